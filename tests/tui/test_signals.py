"""SIGTERM (``kill``) and SIGHUP (a closed SSH session) end the real app like Ctrl+Q.

Unhandled, either signal ended the process on the spot: the end of the streaming reply
(what arrived since the last autosave) was lost, the reply was stored as incomplete
instead of stopped, and SIGTERM left the terminal in the alternate screen with mouse
reporting on. Now the reply stops and is saved as stopped with all the text that
arrived, the terminal is restored and the process exits with 128 + the signal number.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

import pytest

from tests.support.openai_server import OpenAITestServer, Reply
from tests.support.terminal import Terminal, stored_entries, terminal
from tests.tui.helpers import SIZE
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import default_path

WORDS = [f"w{i:03d}" for i in range(400)]
STORY = " ".join(WORDS)
CHUNK = 8
SENT = STORY[: 20 * CHUNK]
"""What the server sends before it stalls: 20 chunks after the one that opens the reply."""

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")


def _stalled_mid_reply(term: Terminal) -> None:
    """Ask for the story and wait until all that comes before the stall is on screen."""
    term.wait_for(lambda: "Message" in term.text(), "the chat screen")
    term.type("Tell me a long story\r")
    last = SENT.split()[-1]
    term.wait_for(lambda: last in term.text(), "the reply on screen up to the stall")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_the_signal_stops_and_saves_the_reply_and_restores_the_terminal(
    signum: int, openai_settings: Settings, openai_server: OpenAITestServer
) -> None:
    openai_settings.save()  # the real app reads config.toml (the key is in the env)
    # The server stalls mid-reply: the text so far arrived within the last second, so
    # only the final save holds all of it (autosaves come at most once a second).
    openai_server.script(Reply(text=STORY, chunk_size=CHUNK, stall_after=21))
    database = default_path()
    with terminal() as term:
        _stalled_mid_reply(term)
        mouse_on_at = term.output.rfind(b"\x1b[?1000h")
        assert mouse_on_at >= 0
        os.kill(term.process.pid, signum)
        code = term.wait_exit()
        openai_server.release()
        ending = bytes(term.output[mouse_on_at:])
    role, content, complete, finish_reason = stored_entries(database)[-1]
    assert role == "assistant"
    assert content == SENT
    assert (complete, finish_reason) == (False, "stopped")
    assert LEAVE_ALTERNATE_SCREEN in ending
    assert all(sequence in ending for sequence in MOUSE_OFF)
    assert code == 128 + signum


def test_a_hung_up_terminal_stops_and_saves_the_reply_and_ends_the_app(
    openai_settings: Settings, openai_server: OpenAITestServer
) -> None:
    """The SSH connection drops: the kernel sends SIGHUP and the terminal is gone."""
    openai_settings.save()
    openai_server.script(Reply(text=STORY, chunk_size=CHUNK, stall_after=21))
    database = default_path()
    with terminal(controlling=True) as term:
        _stalled_mid_reply(term)
        term.hang_up()
        code = term.wait_exit()
        openai_server.release()
    role, content, complete, finish_reason = stored_entries(database)[-1]
    assert (role, content) == ("assistant", SENT)
    assert (complete, finish_reason) == (False, "stopped")
    assert code == 128 + signal.SIGHUP


async def test_the_app_gives_the_signals_back_when_it_ends(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    """Whoever runs the app (a test run, an embedding program) keeps its own handlers."""

    def mine(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("not while the app runs")

    previous = signal.signal(signal.SIGHUP, mine)
    try:
        async with make_app(mock_settings).run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert signal.getsignal(signal.SIGHUP) is not mine
        assert signal.getsignal(signal.SIGHUP) is mine
    finally:
        signal.signal(signal.SIGHUP, previous)
