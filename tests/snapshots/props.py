"""What the snapshot scenes stand on: environment, pinned machine facts, a stalled hub,
an advertised fog node, a function for the model to call, and a stored history with fixed
ids and times (see :mod:`tests.snapshots.scenes`)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from unittest import mock

from backends.context import ContextEntry, Role
from backends.fog.advertise import FogAdvertiser
from backends.functions import llm_function
from tests.support.hub_server import HubFileEntry, HubServer
from tui.settings import Settings
from tui.store import Conversation, Store

PINNED_RAM = 16 * 1024**3
"""The free RAM shown next to the on-device models."""


# Surroundings ------------------------------------------------------------------------------
@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (``None``: remove) environment variables, with TZ=UTC; restored afterwards."""
    values = {"TZ": "UTC", **values}
    saved = {name: os.environ.get(name) for name in values}

    def put(items: dict[str, str | None]) -> None:
        for name, value in items.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        time.tzset()

    put(values)
    try:
        yield
    finally:
        put(saved)


@contextmanager
def pinned_memory() -> Iterator[None]:
    """This machine's free RAM and llama.cpp build, as the scenes show them."""
    with (
        mock.patch("backends.local.hardware.available_ram", return_value=PINNED_RAM),
        mock.patch("backends.local.platform.gpu_offload_supported", return_value=False),
    ):
        yield


@contextmanager
def advertised(port: int, name: str) -> Iterator[None]:
    """A fog node advertised over mDNS on 127.0.0.1, from a thread with its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    advertiser = FogAdvertiser(port, name=name, interfaces=("127.0.0.1",))
    try:
        asyncio.run_coroutine_threadsafe(advertiser.start(), loop).result(timeout=30)
        yield
    finally:
        try:
            asyncio.run_coroutine_threadsafe(advertiser.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()


class StalledHub(HubServer):
    """The loopback hub; once :attr:`stalled`, its file server holds every download until
    :attr:`release` is set (the scene's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = False
        self.release = threading.Event()

    def find(self, sha: str) -> HubFileEntry | None:
        if self.stalled:
            self.release.wait()
        return super().find(sha)


@llm_function
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: Name of the city.
    """
    return f"Sunny and 21 degrees in {city}."


# Stored conversations ----------------------------------------------------------------------
FIRST_DAY = datetime(2025, 3, 14, 9, 30, tzinfo=timezone.utc)
PRINT_ANSWER = (
    "Use the built-in **print** function; it writes its arguments to standard output, "
    "separated by spaces:\n\n"
    "```python\nname = 'terminal'\nprint('hello,', name)\nprint(f'{len(name)} letters')\n```\n\n"
    "Pass `end=''` to leave out the line break, or `file=sys.stderr` to write to the "
    "error stream."
)
CONVERSATIONS = (
    (
        "Packing list for Lisbon",
        "What should I pack for three days in Lisbon in May?",
        "Light clothes, a jacket for the evenings and shoes for the cobbled hills.",
    ),
    (
        "Fog nodes on my LAN",
        "What is a fog node?",
        "A fog node is a server on your network that runs language models for nearby devices.",
    ),
    ("Printing in Python", "How do I print in Python?", PRINT_ANSWER),
)
"""Title, question and answer; the last is the most recent and opens at the start."""


def fill_history(store: Store, settings: Settings) -> str:
    """Store :data:`CONVERSATIONS` with fixed ids and times; returns the latest one's id."""
    general = settings.general
    conversation_id = ""
    for number, (title, question, answer) in enumerate(CONVERSATIONS, start=1):
        moment = FIRST_DAY + timedelta(days=number, hours=number)
        conversation_id = f"{number:032x}"
        entries = [
            ContextEntry(Role.SYSTEM, general.system_prompt, id=f"{number}-0", created=moment),
            ContextEntry(Role.USER, question, id=f"{number}-1", created=moment),
            ContextEntry(
                Role.ASSISTANT,
                answer,
                id=f"{number}-2",
                created=moment + timedelta(seconds=4),
            ),
        ]
        conversation = Conversation(
            id=conversation_id,
            title=title,
            backend=general.backend,
            model=general.model,
            created=moment,
            updated=moment + timedelta(seconds=4),
            message_count=2,
        )
        store.insert_conversation(conversation, entries)
    return conversation_id
