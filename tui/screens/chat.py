"""The chat screen: conversation list, messages, prompt and status bar.

The screen gets what it uses of its host in a :class:`tui.chat.services.ChatServices`
(store, settings, a session factory); the history list is managed by
:class:`tui.chat.conversations.Conversations`, one reply by :class:`tui.chat.turn.Turn`.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from backends.context import Context, ContextEntry, Role, ToolCall
from backends.errors import LLMError
from backends.session import Session
from backends.state import LLMState
from backends.untrusted import one_line, printable
from tui import keymap
from tui.chat.conversations import NARROW, Conversations
from tui.chat.services import ChatServices
from tui.chat.turn import Turn
from tui.screens.dialogs import ChoiceDialog, ToolApprovalDialog
from tui.store_writer import StoreWriter, WriterEvent
from tui.widgets.footer import KeyFooter
from tui.widgets.messages import ChatItem, ErrorItem, MessageLog, UserMessage
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import ConversationList
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from tui.store import Conversation

__all__ = ["NARROW", "ChatScreen", "ChatServices"]

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

    generating: var[bool] = var(False, bindings=True)
    """A reply streams (Esc stops it; the footer shows Esc only then)."""

    @dataclass
    class StoreEvent(Message):
        """What the history writer reported (posted from its thread)."""

        event: WriterEvent

    def __init__(self, services: ChatServices) -> None:
        super().__init__(id="chat-screen")
        self.services = services
        self.conversations = Conversations(self, services)
        self.conversation: Conversation | None = None
        self.session: Session[Any] | None = None
        self._worker: Worker[None] | None = None
        self._writer: StoreWriter | None = None

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
            self._writer = self.services.open_writer(self._post_store_event)
        return self._writer

    def _post_store_event(self, event: WriterEvent) -> None:
        self.post_message(self.StoreEvent(event))  # thread-safe

    async def on_unmount(self) -> None:
        # The app ends: write what waits (off the event loop; one more try if failing).
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)

    async def on_mount(self) -> None:
        self.writer  # noqa: B018 - the writer's thread starts with the screen
        self.conversations.sidebar_wanted = self.services.settings().ui.show_sidebar
        self.conversations.layout_sidebar()
        self.status.follow(self.services.runner)
        self.apply_settings()
        latest = self._conversations()
        if latest:
            await self.open_conversation(latest[0].id)
        else:
            self.refresh_sidebar()
            self.show_title(None)
        notice = self.services.store.recovery_notice
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
        general = self.services.settings().general
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
            session = self.services.make_session(context)
        except LLMError as error:
            self.session = None
            self.status.state = LLMState.ERROR
            self.status.clear_figures()
            self.call_after_refresh(self.show_error, error)
            return None
        session.approver = self._approve
        self.session = session
        self.status.state = (
            LLMState.READY if session.state is LLMState.UNINITIALIZED else session.state
        )
        return session

    async def show_error(self, error: LLMError) -> None:
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
            return self.services.store.list_conversations()
        except LLMError as error:
            self.call_after_refresh(self.show_error, error)
            return []

    def refresh_sidebar(self) -> None:
        current = self.conversation.id if self.conversation else None
        self.sidebar.show(self._conversations(), current)

    def busy(self) -> bool:
        """Whether a reply streams (then the user is told to stop it first)."""
        if self.generating:
            self.notify(
                "A reply is streaming. Press Esc to stop it first.", severity="warning", timeout=4
            )
        return self.generating

    async def open_conversation(self, conversation_id: str) -> bool:
        store = self.services.store
        try:
            conversation = store.get_conversation(conversation_id)
            if conversation is None:
                from tui.store import ConversationNotFoundError

                raise ConversationNotFoundError()
            context = self.writer.overlay(conversation_id, store.load_context(conversation_id))
            damage = store.damage_report(conversation_id)
        except LLMError as error:
            await self.show_error(error)
            self.refresh_sidebar()
            return False
        self.conversation = conversation
        self.session = None
        self._new_session(context)
        await self.log_view.show_entries(list(context), speaker=f"Assistant · {conversation.model}")
        if damage is not None:
            await self.log_view.add(ErrorItem(damage))
        self.refresh_sidebar()
        self.show_title(conversation.title)
        self.status.clear_figures()
        return True

    async def action_new_chat(self) -> None:
        if self.busy():
            return
        self.conversation = None
        self.session = None
        self._new_session(None)
        await self.log_view.clear()
        self.refresh_sidebar()
        self.show_title(None)
        self.status.clear_figures()
        self.prompt.focus()

    def show_title(self, title: str | None) -> None:
        """Name the open conversation (``None``: a new one, with a hint how to start)."""
        self.sub_title = one_line(title or "")
        shown = one_line(title) if title is not None else "New conversation"
        self.query_one("#conversation-title", Static).update(Content(shown))
        if title is None and not self.log_view.items():
            from tui.widgets.messages import empty_hint

            keys = self.services.settings().ui.keybindings
            remapped, _problems = keymap.check_keymap(keys)
            self.log_view.show_hint(empty_hint(lambda key: keymap.key_label(key, remapped)))
        else:
            self.log_view.hide_hint()

    @on(ConversationList.Open)
    async def _open_from_sidebar(self, event: ConversationList.Open) -> None:
        if self.conversation is not None and event.conversation_id == self.conversation.id:
            self.prompt.focus()
            return
        if not self.busy() and await self.open_conversation(event.conversation_id):
            self.prompt.focus()

    @on(ConversationList.Rename)
    def _rename(self, event: ConversationList.Rename) -> None:
        self.conversations.rename(event.conversation_id)

    @on(ConversationList.Delete)
    def _delete(self, event: ConversationList.Delete) -> None:
        self.conversations.delete(event.conversation_id)

    @on(StoreEvent)
    async def _store_event(self, message: StoreEvent) -> None:
        await self.conversations.report(message.event)

    # Sending ------------------------------------------------------------------------------
    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        if not event.text.strip() or self.busy():
            return
        session = self.session or self._new_session(None)
        if session is None:
            return  # the error is on screen; the text stays in the prompt
        if session.state in (LLMState.GENERATING, LLMState.LOADING):
            self.busy()
            return
        if self.conversation is None:
            from tui.store import Store, title_from_text

            general = self.services.settings().general
            self.conversation = Store.new_conversation(
                title_from_text(event.text), general.backend, general.model
            )
            self.writer.create(self.conversation, list(session.context))
            self.show_title(self.conversation.title)
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

    def _start_generation(self, user_id: str) -> None:
        # Busy from now on, so a second Enter cannot start another reply meanwhile.
        self.generating = True
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
            speaker=f"Assistant · {self.services.settings().general.model}",
        )
        error: LLMError | None = None
        with self.services.while_streaming():
            try:
                await self.services.prepare_session(session)  # MCP servers and their tools
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
                    self.status.state = session.state
                    self.refresh_sidebar()
        if error is not None and shown:
            self.status.state = LLMState.ERROR
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
        if self.busy():
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
    def on_resize(self) -> None:
        self.conversations.layout_sidebar()

    def action_toggle_sidebar(self) -> None:
        self.conversations.toggle_sidebar()

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
        self.conversations.search()

    async def action_export(self) -> None:
        await self.conversations.export()

    def action_settings(self) -> None:
        from tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen(self.services.settings()), self._settings_saved)

    def _settings_saved(self, changed: bool | None) -> None:
        if changed:
            self.apply_settings()

    def action_switch_model(self) -> None:
        from tui.screens.models import ModelPicker

        def chosen(model: str | None) -> None:
            if model:
                self.services.set_model(model)

        self.app.push_screen(ModelPicker(self.services.settings()), chosen)
