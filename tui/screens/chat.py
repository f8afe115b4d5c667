"""The chat screen: conversation list, messages, prompt and status bar.

Replies stream in a worker (``@work(exclusive=True)``) on the app's event loop. The
user's message is stored before the request goes out; the reply is stored at least once
a second while it streams and again when it ends, is stopped or fails. Every write goes
through a :class:`tui.store_writer.StoreWriter`: never blocking the keys, in order, kept
and retried when it fails; what it reports (a failure, the waiting changes saved, a fork
because another window continued the conversation, changes made by other windows)
comes back as a :class:`ChatScreen.StoreEvent`.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.widgets.option_list import OptionDoesNotExist
from textual.worker import Worker

from backends.context import Context, ContextEntry, Role, ToolCall
from backends.errors import LLMError
from backends.session import Session
from backends.state import LLMState
from backends.untrusted import one_line, printable
from tui import keymap
from tui.screens.dialogs import ChoiceDialog, ConfirmDialog, TextDialog, ToolApprovalDialog
from tui.screens.turn import Turn
from tui.store_schema import ConversationChangedError
from tui.store_writer import (
    ChangedElsewhere,
    Dropped,
    Forked,
    StoreWriter,
    WriteFailed,
    WriterEvent,
    WritesResumed,
    Written,
)
from tui.widgets.footer import KeyFooter
from tui.widgets.messages import ChatItem, ErrorItem, MessageLog, NoticeItem, UserMessage
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import ConversationList
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from tui.app import SpeziChatApp
    from tui.store import Conversation, SearchHit

NARROW = 60
"""Below this many columns the conversation list hides itself (Ctrl+B still shows it)."""

STOP_GRACE_S = 1.0
"""After Esc, how long the backend may take to stop on its own before the worker is cancelled."""

WARM_UP_AFTER_S = 0.5
"""How long after the screen is up (or the backend changed) the warm-up thread starts."""

PROMPT_PLACEHOLDER = "Message · Enter: send · Ctrl+J: new line"


class ChatScreen(Screen[None]):
    """Where conversations happen."""

    # In the footer's order (the keys that fit are shown: see tui.widgets.footer).
    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(
        "chat.stop",
        "chat.new",
        "chat.search",
        "chat.messages",
        "chat.conversations",
        "chat.sidebar",
        "chat.model",
        "chat.retry",
        "chat.export",
        "chat.settings",
        "prompt.page_up",
        "prompt.page_down",
    )

    @dataclass
    class StoreEvent(Message):
        """What the history writer reported (posted from its thread)."""

        event: WriterEvent

    def __init__(self) -> None:
        super().__init__(id="chat-screen")
        self.conversation: Conversation | None = None
        self.session: Session[Any] | None = None
        self.generating = False
        self._worker: Worker[None] | None = None
        self._writer: StoreWriter | None = None
        self._sidebar_wanted = True
        self._sidebar_forced = False

    @property
    def chat_app(self) -> SpeziChatApp:
        return cast("SpeziChatApp", self.app)

    # Layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield ConversationList(id="sidebar", compact=True)
            with Vertical(id="chat"):
                yield Static(id="conversation-title")
                yield MessageLog(id="messages")
                yield PromptInput(id="prompt", placeholder=PROMPT_PLACEHOLDER)
                yield StatusBar(id="status")
        # The key hints (Footer) come a frame after the rest: see on_mount.

    @property
    def log_view(self) -> MessageLog:
        return self.query_one(MessageLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def sidebar(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def writer(self) -> StoreWriter:
        """Where every change to the history goes (started when the screen mounts)."""
        if self._writer is None:
            self._writer = StoreWriter(self.chat_app.store, self._post_store_event)
        return self._writer

    def _post_store_event(self, event: WriterEvent) -> None:
        self.post_message(self.StoreEvent(event))  # thread-safe

    async def on_unmount(self) -> None:
        # The app ends: write what waits (off the event loop; one more try if failing).
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)

    async def on_mount(self) -> None:
        self.writer  # noqa: B018 - the writer's thread starts with the screen
        self._sidebar_wanted = self.chat_app.settings.ui.show_sidebar
        self._layout_sidebar()
        self.status.follow(self.chat_app.runner)
        self.apply_settings()
        latest = self._conversations()
        if latest:
            await self.open_conversation(latest[0].id)
        else:
            self.refresh_sidebar()
            self._show_title(None)
        notice = self.chat_app.store.recovery_notice
        if notice is not None:
            # Besides the toast: in the conversation, where it stays until another is opened.
            await self.log_view.add(ErrorItem(notice))
        self.prompt.focus()
        # The footer rebuilds its keys whenever the focus changes, as it does while the
        # screen starts: mounted once the screen is up, it is built once (50 ms sooner).
        self.call_after_refresh(self.mount, KeyFooter())

    # Sessions -------------------------------------------------------------------------------
    def apply_settings(self) -> None:
        """Use the current settings (backend, model, parameters) from the next reply on."""
        general = self.chat_app.settings.general
        self.status.backend = general.backend
        self.status.model = general.model
        # A conversation keeps its context (and system prompt); an unsent one starts afresh.
        keep = self.session is not None and self.conversation is not None
        context = self.session.context if keep and self.session is not None else None
        self.session = None
        self._new_session(context)
        backend = general.backend
        self.set_timer(WARM_UP_AFTER_S, lambda: self._warm_up(backend))

    @work(thread=True, exclusive=True, group="warm-up", exit_on_error=False)
    def _warm_up(self, backend: str) -> None:
        """Prepare what the first reply needs, off the event loop (see tui.warmup)."""
        from tui.warmup import warm_up

        warm_up(backend)

    def _new_session(self, context: Context | None) -> Session[Any] | None:
        try:
            session = self.chat_app.make_session(context)
        except LLMError as error:
            self.session = None
            self.status.state = "error"
            self.status.clear_figures()
            self.call_after_refresh(self._show_error, error)
            return None
        session.approver = self._approve
        self.session = session
        self.status.state = (
            "ready" if session.state is LLMState.UNINITIALIZED else session.state.value
        )
        return session

    async def _show_error(self, error: LLMError) -> None:
        await self.log_view.add(ErrorItem(error))

    async def _approve(self, call: ToolCall) -> bool:
        """Ask the user before a function runs (called by the session's tool loop)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def settle(result: bool | None) -> None:
            if not answer.done():
                answer.set_result(bool(result))

        dialog = ToolApprovalDialog(
            call, last_keystroke=self.prompt.last_keystroke, type_ahead=self.prompt.type_ahead
        )
        self.app.push_screen(dialog, settle)
        return await answer

    # Conversations ------------------------------------------------------------------------
    def _conversations(self) -> list[Conversation]:
        try:
            return self.chat_app.store.list_conversations()
        except LLMError as error:
            self.call_after_refresh(self._show_error, error)
            return []

    def refresh_sidebar(self) -> None:
        current = self.conversation.id if self.conversation else None
        self.sidebar.show(self._conversations(), current)

    def _busy(self) -> bool:
        if self.generating:
            self.notify(
                "A reply is streaming. Press Esc to stop it first.", severity="warning", timeout=4
            )
        return self.generating

    async def open_conversation(self, conversation_id: str) -> bool:
        store = self.chat_app.store
        try:
            conversation = store.get_conversation(conversation_id)
            if conversation is None:
                from tui.store import ConversationNotFoundError

                raise ConversationNotFoundError()
            context = self.writer.overlay(conversation_id, store.load_context(conversation_id))
            damage = store.damage_report(conversation_id)
        except LLMError as error:
            await self._show_error(error)
            self.refresh_sidebar()
            return False
        self.conversation = conversation
        self.session = None
        self._new_session(context)
        await self.log_view.show_entries(list(context), speaker=f"Assistant · {conversation.model}")
        if damage is not None:
            await self.log_view.add(ErrorItem(damage))
        self.refresh_sidebar()
        self._show_title(conversation.title)
        self.status.clear_figures()
        return True

    async def action_new_chat(self) -> None:
        if self._busy():
            return
        self.conversation = None
        self.session = None
        self._new_session(None)
        await self.log_view.clear()
        self.refresh_sidebar()
        self._show_title(None)
        self.status.clear_figures()
        self.prompt.focus()

    def _show_title(self, title: str | None) -> None:
        """Name the open conversation (``None``: a new one, with a hint how to start)."""
        self.sub_title = one_line(title or "")
        shown = one_line(title) if title is not None else "New conversation"
        self.query_one("#conversation-title", Static).update(Content(shown))
        if title is None and not self.log_view.items():
            from tui.widgets.messages import empty_hint

            remapped, _problems = keymap.check_keymap(self.chat_app.settings.ui.keybindings)
            self.log_view.show_hint(empty_hint(lambda key: keymap.key_label(key, remapped)))
        else:
            self.log_view.hide_hint()

    @on(ConversationList.Open)
    async def _open_from_sidebar(self, event: ConversationList.Open) -> None:
        if self.conversation is not None and event.conversation_id == self.conversation.id:
            self.prompt.focus()
            return
        if not self._busy() and await self.open_conversation(event.conversation_id):
            self.prompt.focus()

    @on(ConversationList.Rename)
    def _rename(self, event: ConversationList.Rename) -> None:
        conversation = self.chat_app.store.get_conversation(event.conversation_id)
        if conversation is None:
            return

        def rename(title: str | None) -> None:
            if not title:
                return
            self.writer.rename(event.conversation_id, title)
            if self.conversation is not None and self.conversation.id == event.conversation_id:
                self.conversation = replace(self.conversation, title=title)
                self._show_title(title)
            self.refresh_sidebar()

        self.app.push_screen(TextDialog("Rename the conversation", conversation.title), rename)

    @on(ConversationList.Delete)
    def _delete(self, event: ConversationList.Delete) -> None:
        conversation = self.chat_app.store.get_conversation(event.conversation_id)
        if conversation is None:
            return
        if self.generating and self.conversation and self.conversation.id == conversation.id:
            self._busy()
            return

        async def delete(confirmed: bool | None) -> None:
            if not confirmed:
                return
            self.writer.delete_conversation(event.conversation_id)
            if self.conversation is not None and self.conversation.id == event.conversation_id:
                await self.action_new_chat()
            self.refresh_sidebar()
            self.notify(f"Deleted “{one_line(conversation.title)}”.", timeout=3, markup=False)

        self.app.push_screen(
            ConfirmDialog(
                "Delete this conversation?",
                f"“{conversation.title}” and its {conversation.message_count} messages will be "
                "deleted. This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            delete,
        )

    # Sending ------------------------------------------------------------------------------
    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        if not event.text.strip() or self._busy():
            return
        session = self.session or self._new_session(None)
        if session is None:
            return  # the error is on screen; the text stays in the prompt
        if session.state in (LLMState.GENERATING, LLMState.LOADING):
            self._busy()
            return
        if self.conversation is None:
            from tui.store import Store, title_from_text

            general = self.chat_app.settings.general
            self.conversation = Store.new_conversation(
                title_from_text(event.text), general.backend, general.model
            )
            self.writer.create(self.conversation, list(session.context))
            self._show_title(self.conversation.title)
        entry = session.context.append_user(event.prompt.take_text())
        self._save(entry)
        # The message takes its place in the log now; the request need not wait for it
        # to be drawn.
        shown = self.log_view.mount(UserMessage(entry))
        self.log_view.anchor()
        self._start_generation(entry.id)
        self.refresh_sidebar()
        await shown

    def _save(self, entry: ContextEntry) -> None:
        if self.conversation is not None and self.session is not None:
            self.writer.save(self.conversation, self.session.context, entry)

    @on(StoreEvent)
    async def _store_event(self, message: StoreEvent) -> None:
        event = message.event
        if isinstance(event, WriteFailed):
            await self.log_view.add(ErrorItem(event.error))
            self.notify(
                f"{event.pending} change(s) to the history wait to be saved. Nothing on "
                "screen is lost: spezichat tries again by itself and with every new message.",
                title="Not saved yet",
                severity="warning",
                timeout=10,
                markup=False,
            )
        elif isinstance(event, WritesResumed):
            await self.log_view.add(
                NoticeItem(f"Saved the {event.written} change(s) that had waited.")
            )
        elif isinstance(event, Forked):
            await self._forked(event)
        elif isinstance(event, Dropped):
            await self.log_view.add(ErrorItem(event.error))
        if isinstance(event, WritesResumed | Forked):
            self.refresh_sidebar()
        elif isinstance(event, Written | ChangedElsewhere):
            self._refresh_sidebar_in_background()

    def _refresh_sidebar_in_background(self) -> None:
        """The list changed behind the user's back: keep their place in it."""
        sidebar = self.sidebar
        keep = sidebar.highlighted_id if sidebar.has_focus else None
        self.refresh_sidebar()
        if keep is not None and keep != sidebar.highlighted_id:
            with suppress(OptionDoesNotExist):
                sidebar.highlighted = sidebar.get_option_index(keep)

    async def _forked(self, event: Forked) -> None:
        current = self.conversation
        if current is None or current.id != event.source_id:
            return  # another conversation's late writes; the sidebar shows the copy
        self.conversation = event.fork
        self._show_title(event.fork.title)
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
        await self.log_view.add(NoticeItem(text))

    def _start_generation(self, user_id: str) -> None:
        # Busy from now on, so a second Enter cannot start another reply meanwhile.
        self.generating = True
        self.refresh_bindings()
        self._worker = self.generate(user_id)

    @work(exclusive=True, group="generate")
    async def generate(self, user_id: str) -> None:
        """Stream one reply (with its tool calls) into the log and the store."""
        session = self.session
        if session is None:
            self.generating = False
            return
        turn = Turn(
            log=self.log_view,
            status=self.status,
            context=session.context,
            writer=self.writer,
            conversation=self.conversation,
            user_id=user_id,
            speaker=f"Assistant · {self.chat_app.settings.general.model}",
        )
        error: LLMError | None = None
        with self.chat_app.no_full_collections():
            try:
                await self.chat_app.prepare_session(session)  # MCP servers and their tools
                async for event in session.stream():
                    await turn.handle(event)
            except LLMError as exc:
                error = exc
            finally:
                await turn.close(stopped=session.cancelled and error is None)
                self.generating = False
                self._worker = None
                # When the app quits mid-reply, the screen's widgets may be gone by now.
                shown = self.is_attached and bool(self.query(StatusBar))
                if shown:
                    self.status.state = session.state.value
                    self.refresh_bindings()
                    self.refresh_sidebar()
        if error is not None and shown:
            self.status.state = "error"
            await self.log_view.add(ErrorItem(error))

    # Stop and retry -----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        if action == "page_messages":
            # Elsewhere PageUp and PageDown are the focused widget's own.
            return self.app.focused is self.prompt
        return True

    def action_page_messages(self, pages: int) -> None:
        self.log_view.page(pages)

    def action_stop(self) -> None:
        if not self.generating or self.session is None:
            return
        self.session.cancel()
        worker = self._worker
        self.set_timer(STOP_GRACE_S, lambda: self._force_stop(worker))

    def _force_stop(self, worker: Worker[None] | None) -> None:
        if worker is not None and worker is self._worker and worker.is_running:
            worker.cancel()

    async def action_retry(self) -> None:
        if self._busy():
            return
        session = self.session
        last_user = session.context.last(Role.USER) if session else None
        if session is None or last_user is None:
            self.notify("There is no message to answer again yet.", timeout=3)
            return
        removed = session.context.remove_last_reply()
        if self.conversation is not None and removed:
            self.writer.delete_entries(self.conversation, [e.id for e in removed])
        await self.log_view.remove_after(last_user.id)
        self.log_view.anchor()
        self._start_generation(last_user.id)

    # Other actions ------------------------------------------------------------------------
    def _layout_sidebar(self) -> None:
        """Show the list when wanted; below NARROW columns only when asked for there."""
        narrow = self.size.width < NARROW
        self.sidebar.display = self._sidebar_wanted and (not narrow or self._sidebar_forced)
        self.query_one("#conversation-title").display = not self.sidebar.display
        if not self.sidebar.display and self.sidebar.has_focus:
            self.prompt.focus()

    def on_resize(self) -> None:
        self._layout_sidebar()

    def action_toggle_sidebar(self) -> None:
        show = not self.sidebar.display
        self._sidebar_wanted = show
        self._sidebar_forced = show and self.size.width < NARROW
        self._layout_sidebar()
        settings = self.chat_app.settings
        if settings.ui.show_sidebar != show:
            settings.ui.show_sidebar = show
            self.chat_app.save_settings()

    def action_focus_sidebar(self) -> None:
        if not self.sidebar.display:
            self.action_toggle_sidebar()
        self.sidebar.focus()

    def action_focus_messages(self) -> None:
        items = self.log_view.items()
        if items:
            items[-1].focus()

    @on(ChatItem.LeaveToPrompt)
    @on(ConversationList.LeaveToPrompt)
    def _to_prompt(self) -> None:
        self.prompt.focus()

    @on(ChatItem.CopyCode)
    def _copy_code(self, event: ChatItem.CopyCode) -> None:
        def copy(index: int | None) -> None:
            if index is not None:
                self.app.copy_to_clipboard(printable(event.blocks[index]))  # as shown
                self.notify(f"Copied code block {index + 1}.", timeout=3)

        choices = [
            block.strip().splitlines()[0][:60] if block.strip() else "(empty)"
            for block in event.blocks
        ]
        self.app.push_screen(ChoiceDialog("Copy which code block?", choices), copy)

    @on(MessageLog.LoadEarlier)
    async def _load_earlier(self) -> None:
        focused = self.app.focused
        await self.log_view.show_earlier()
        if isinstance(focused, ChatItem):
            focused.action_previous()  # Up at the top: on into the older messages

    def action_search(self) -> None:
        from tui.screens.search import SearchScreen

        self.app.push_screen(SearchScreen(self.chat_app.store), self._jump_to)

    async def _jump_to(self, hit: SearchHit | None) -> None:
        if hit is None:
            return
        elsewhere = self.conversation is None or self.conversation.id != hit.conversation_id
        if elsewhere and (self._busy() or not await self.open_conversation(hit.conversation_id)):
            return
        from tui.screens.search import match_finder

        if await self.log_view.reveal(hit.entry_id, match=match_finder(hit.snippet)) is None:
            self.notify("That message is no longer in the conversation.", severity="warning")

    async def action_export(self) -> None:
        if self.conversation is None:
            self.notify("Nothing to export yet: send a message first.", timeout=3)
            return
        from tui.export import export_to_file

        if self.writer.pending:
            self.notify(
                f"{self.writer.pending} change(s) are not saved yet; the export holds what is.",
                severity="warning",
                timeout=6,
            )
        directory = self.chat_app.export_dir()
        try:
            paths = [
                export_to_file(self.chat_app.store, self.conversation.id, directory, fmt)
                for fmt in ("md", "json")
            ]
        except LLMError as error:
            await self._show_error(error)
            return
        text = "Exported to " + " and ".join(str(path) for path in paths)
        await self.log_view.add(NoticeItem(text))
        self.notify(printable(text), title="Export", timeout=8, markup=False)

    def action_settings(self) -> None:
        from tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen(self.chat_app.settings), self._settings_saved)

    def _settings_saved(self, changed: bool | None) -> None:
        if changed:
            self.apply_settings()

    def action_switch_model(self) -> None:
        from tui.screens.models import ModelPicker

        def chosen(model: str | None) -> None:
            if model:
                self.chat_app.set_model(model)

        self.app.push_screen(ModelPicker(self.chat_app.settings), chosen)
