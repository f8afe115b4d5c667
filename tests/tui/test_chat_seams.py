"""The chat screen's seams (issue #14): it gets its store, settings and sessions handed in.

A plain Textual app (not SpeziChatApp) hosts the chat screen with its own
:class:`ChatServices`: a real store, real settings, the real mock backend behind a real
runner. The screen must reach nothing of the app but what the services give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import App

import tui
from backends.context import Context
from backends.mock import MockPlatform, MockSchema
from backends.runner import Runner
from backends.session import Session
from backends.state import LLMState
from tests.tui.helpers import SIZE, chat, replies, send, type_text, wait_until
from tui.chat.services import ChatServices
from tui.screens.chat import ChatScreen
from tui.settings import Settings
from tui.store import Store

LONG_REPLY = " ".join(f"word{n}" for n in range(5000))
"""Streams for far longer than any test waits: only Esc ends it."""


@dataclass
class Host:
    """What a host app hands the chat screen, and what the screen asked of it."""

    store: Store
    export_to: Path
    reply: str = "Hosted reply."
    settings: Settings = field(default_factory=Settings)
    runner: Runner = field(default_factory=Runner)
    prepared: list[Session[Any]] = field(default_factory=list)
    streams: int = 0
    saves: int = 0
    models: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings.general.backend = "mock"
        self.settings.general.model = "host-model"
        self.runner.register(MockPlatform())

    def make_session(self, context: Context | None) -> Session[Any]:
        schema = MockSchema(model="host-model", responses=(self.reply,), delay=0.01)
        return self.runner.session(schema, context)

    async def prepare_session(self, session: Session[Any]) -> None:
        self.prepared.append(session)

    def save_settings(self) -> bool:
        self.saves += 1
        return True

    @contextmanager
    def streaming(self) -> Iterator[None]:
        self.streams += 1
        yield

    def services(self) -> ChatServices:
        return ChatServices(
            store=self.store,
            runner=self.runner,
            settings=lambda: self.settings,
            make_session=self.make_session,
            prepare_session=self.prepare_session,
            save_settings=self.save_settings,
            set_model=self.models.append,
            export_dir=lambda: self.export_to,
            while_streaming=self.streaming,
        )


class HostApp(App[None]):
    """Any app: nothing of SpeziChatApp."""

    CSS_PATH = str(Path(tui.__file__).parent / "app.tcss")

    def __init__(self, services: ChatServices) -> None:
        super().__init__()
        self.services = services

    def on_mount(self) -> None:
        self.push_screen(ChatScreen(self.services))


async def test_a_plain_app_hosts_the_chat_with_its_own_services(
    store: Store, tmp_path: Path
) -> None:
    host = Host(store=store, export_to=tmp_path / "exports")
    app = HostApp(host.services())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        screen = chat(pilot)
        assert (screen.status.backend, screen.status.model) == ("mock", "host-model")
        await send(pilot, "hello")
        assert replies(pilot)[-1].text.strip() == "Hosted reply."
        assert host.prepared == [screen.session] and host.streams == 1
        assert screen.status.state is LLMState.READY
        await wait_until(pilot, lambda: not screen.writer.pending, "the history written")
        [stored] = store.list_conversations()
        assert (stored.title, stored.model) == ("hello", "host-model")
        # Export goes where the host says; the sidebar choice is saved through the host.
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(list(host.export_to.glob("*"))) == 2, "the export")
        shown = host.settings.ui.show_sidebar
        await pilot.press("ctrl+b")
        assert host.settings.ui.show_sidebar is not shown and host.saves == 1


def footer_actions(app: App[Any]) -> set[str]:
    return {str(getattr(key, "action", "")) for key in app.screen.query("FooterKey")}


def status_state(screen: ChatScreen) -> LLMState:
    return screen.status.state


async def test_the_footer_offers_esc_only_while_a_reply_streams(
    store: Store, tmp_path: Path
) -> None:
    host = Host(store=store, export_to=tmp_path, reply=LONG_REPLY)
    app = HostApp(host.services())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(footer_actions(app)), "the footer")
        screen = chat(pilot)
        assert "stop" not in footer_actions(app)
        await type_text(pilot, "go on")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "stop" in footer_actions(app), "Esc in the footer")
        assert screen.generating and status_state(screen) is LLMState.GENERATING
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        await wait_until(pilot, lambda: "stop" not in footer_actions(app), "Esc gone again")
        assert status_state(screen) is LLMState.READY
