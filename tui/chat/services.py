"""What the chat screen uses of the app that hosts it, handed in when it is built.

The screen reaches nothing else of its host: any app (or test) that supplies these can
show a chat for any store, settings and sessions. :meth:`SpeziChatApp.chat_services`
builds the app's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.context import Context
    from backends.runner import Runner
    from backends.session import Session
    from tui.settings import Settings
    from tui.store import Store
    from tui.store_writer import StoreWriter, WriterEvent


@dataclass(frozen=True)
class ChatServices:
    """The store, settings and sessions behind a chat screen."""

    store: Store
    """The history: conversations are listed, read, searched and exported from it."""
    runner: Runner
    """Whose state (working or idle) the status bar shows."""
    settings: Callable[[], Settings]
    """The settings now (the onboarding may replace them while the screen is up)."""
    make_session: Callable[[Context | None], Session[Any]]
    """A session for the configured backend and model, continuing a context (or a new
    one); raises :class:`backends.errors.LLMError` when the settings cannot make one."""
    prepare_session: Callable[[Session[Any]], Awaitable[None]]
    """Called before each reply (the app starts MCP servers and offers their tools)."""
    save_settings: Callable[[], bool]
    """Store the settings (after the sidebar was shown or hidden); False if that failed
    (the host tells the user)."""
    set_model: Callable[[str], None]
    """Use and remember another model (the host applies it to the chat screen)."""
    export_dir: Callable[[], Path]
    """Where exported conversations go."""
    while_streaming: Callable[[], AbstractContextManager[None]] = nullcontext
    """Held while a reply streams (the app postpones full garbage collections)."""

    def open_writer(self, on_event: Callable[[WriterEvent], None]) -> StoreWriter:
        """The history writer of one screen: every change to the store goes through it;
        ``on_event`` gets what it reports, from its thread."""
        from tui.store_writer import StoreWriter

        return StoreWriter(self.store, on_event)
