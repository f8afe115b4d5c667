"""The chat screen's history list: rename, delete, search, export, the sidebar's place,
and what the history writer reports (failures, resumed writes, forks, other windows).

:class:`Conversations` is owned by one :class:`tui.screens.chat.ChatScreen` (which
handles the messages and keys and calls in here); it reads the history from the screen's
services and changes it only through the screen's :class:`tui.store_writer.StoreWriter`.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from textual.widgets.option_list import OptionDoesNotExist

from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui.screens.dialogs import ConfirmDialog, TextDialog
from tui.store_schema import ConversationChangedError
from tui.store_writer import (
    ChangedElsewhere,
    Dropped,
    Forked,
    WriteFailed,
    WriterEvent,
    WritesResumed,
    Written,
)
from tui.widgets.messages import ErrorItem, NoticeItem

if TYPE_CHECKING:
    from tui.chat.services import ChatServices
    from tui.screens.chat import ChatScreen
    from tui.store import SearchHit

NARROW = 60
"""Below this many columns the conversation list hides itself (Ctrl+B still shows it)."""


class Conversations:
    """What one chat screen does with the stored conversations and their list."""

    def __init__(self, screen: ChatScreen, services: ChatServices) -> None:
        self.screen = screen
        self.services = services
        self.sidebar_wanted = True
        """Whether the user wants the list (``[ui] show_sidebar``, Ctrl+B)."""
        self.sidebar_forced = False
        """Shown by Ctrl+B below NARROW columns, where it would hide itself."""

    # The sidebar ------------------------------------------------------------------------
    def layout_sidebar(self) -> None:
        """Show the list when wanted; below NARROW columns only when asked for there."""
        screen = self.screen
        sidebar = screen.sidebar
        narrow = screen.size.width < NARROW
        sidebar.display = self.sidebar_wanted and (not narrow or self.sidebar_forced)
        screen.query_one("#conversation-title").display = not sidebar.display
        if not sidebar.display and sidebar.has_focus:
            screen.prompt.focus()

    def toggle_sidebar(self) -> None:
        """Show or hide the list, and remember that in the settings."""
        show = not self.screen.sidebar.display
        self.sidebar_wanted = show
        self.sidebar_forced = show and self.screen.size.width < NARROW
        self.layout_sidebar()
        settings = self.services.settings()
        if settings.ui.show_sidebar != show:
            settings.ui.show_sidebar = show
            self.services.save_settings()

    def refresh_in_background(self) -> None:
        """The list changed behind the user's back: keep their place in it."""
        sidebar = self.screen.sidebar
        keep = sidebar.highlighted_id if sidebar.has_focus else None
        self.screen.refresh_sidebar()
        if keep is not None and keep != sidebar.highlighted_id:
            with suppress(OptionDoesNotExist):
                sidebar.highlighted = sidebar.get_option_index(keep)

    # Rename and delete --------------------------------------------------------------------
    def rename(self, conversation_id: str) -> None:
        """Ask for a new title, then store and show it."""
        screen = self.screen
        conversation = self.services.store.get_conversation(conversation_id)
        if conversation is None:
            return

        def rename(title: str | None) -> None:
            if not title:
                return
            screen.writer.rename(conversation_id, title)
            if screen.conversation is not None and screen.conversation.id == conversation_id:
                screen.conversation = replace(screen.conversation, title=title)
                screen.show_title(title)
            screen.refresh_sidebar()

        screen.app.push_screen(TextDialog("Rename the conversation", conversation.title), rename)

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation once the user confirms (not while it gets its reply)."""
        screen = self.screen
        conversation = self.services.store.get_conversation(conversation_id)
        if conversation is None:
            return
        if screen.generating and screen.conversation and screen.conversation.id == conversation.id:
            screen.busy()
            return

        async def delete(confirmed: bool | None) -> None:
            if not confirmed:
                return
            screen.writer.delete_conversation(conversation_id)
            if screen.conversation is not None and screen.conversation.id == conversation_id:
                await screen.action_new_chat()
            screen.refresh_sidebar()
            screen.notify(f"Deleted “{one_line(conversation.title)}”.", timeout=3, markup=False)

        screen.app.push_screen(
            ConfirmDialog(
                "Delete this conversation?",
                f"“{conversation.title}” and its {conversation.message_count} messages will be "
                "deleted. This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            delete,
        )

    # Search and export ---------------------------------------------------------------------
    def search(self) -> None:
        """Search every conversation; the chosen message is opened and shown."""
        from tui.screens.search import SearchScreen

        self.screen.app.push_screen(SearchScreen(self.services.store), self._jump_to)

    async def _jump_to(self, hit: SearchHit | None) -> None:
        if hit is None:
            return
        screen = self.screen
        elsewhere = screen.conversation is None or screen.conversation.id != hit.conversation_id
        if elsewhere and (screen.busy() or not await screen.open_conversation(hit.conversation_id)):
            return
        from tui.screens.search import match_finder

        if await screen.log_view.reveal(hit.entry_id, match=match_finder(hit.snippet)) is None:
            screen.notify("That message is no longer in the conversation.", severity="warning")

    async def export(self) -> None:
        """Save the open conversation as Markdown and JSON, and say where."""
        screen = self.screen
        if screen.conversation is None:
            screen.notify("Nothing to export yet: send a message first.", timeout=3)
            return
        from tui.export import export_to_file

        if screen.writer.pending:
            screen.notify(
                f"{screen.writer.pending} change(s) are not saved yet; the export holds what is.",
                severity="warning",
                timeout=6,
            )
        directory = self.services.export_dir()
        try:
            paths = [
                export_to_file(self.services.store, screen.conversation.id, directory, fmt)
                for fmt in ("md", "json")
            ]
        except LLMError as error:
            await screen.show_error(error)
            return
        text = "Exported to " + " and ".join(str(path) for path in paths)
        await screen.log_view.add(NoticeItem(text))
        screen.notify(printable(text), title="Export", timeout=8, markup=False)

    # What the history writer reports ---------------------------------------------------------
    async def report(self, event: WriterEvent) -> None:
        """Show what the history writer reported (see :class:`tui.store_writer.StoreWriter`)."""
        screen = self.screen
        if isinstance(event, WriteFailed):
            await screen.log_view.add(ErrorItem(event.error))
            screen.notify(
                f"{event.pending} change(s) to the history wait to be saved. Nothing on "
                "screen is lost: spezichat tries again by itself and with every new message.",
                title="Not saved yet",
                severity="warning",
                timeout=10,
                markup=False,
            )
        elif isinstance(event, WritesResumed):
            await screen.log_view.add(
                NoticeItem(f"Saved the {event.written} change(s) that had waited.")
            )
        elif isinstance(event, Forked):
            await self._forked(event)
        elif isinstance(event, Dropped):
            await screen.log_view.add(ErrorItem(event.error))
        if isinstance(event, WritesResumed | Forked):
            screen.refresh_sidebar()
        elif isinstance(event, Written | ChangedElsewhere):
            self.refresh_in_background()

    async def _forked(self, event: Forked) -> None:
        screen = self.screen
        current = screen.conversation
        if current is None or current.id != event.source_id:
            return  # another conversation's late writes; the sidebar shows the copy
        screen.conversation = event.fork
        screen.show_title(event.fork.title)
        if isinstance(event.error, ConversationChangedError):
            text = (
                f"{event.error.description} {event.error.reason} So that the two windows' "
                f"messages do not mix, this window's conversation continues as a copy: "
                f"“{event.fork.title}”; the other window's stays as it is."
            )
        else:
            text = (
                f"“{current.title}” was deleted in another window; this window's "
                f"conversation is kept as “{event.fork.title}”."
            )
        await screen.log_view.add(NoticeItem(text))
