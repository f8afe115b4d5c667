"""The conversation view: one focusable item per message, tool call, error or notice.

Items only display; they never talk to a model or the store. The chat screen mounts
them, streams text into :class:`AssistantMessage` and listens for the messages they post
(for example :class:`ChatItem.LeaveToPrompt`).

Everything they show came from outside (replies, tool calls, server errors, model ids):
it is drawn as plain text (``Content``, never markup) after
:func:`backends.untrusted.printable` or :func:`~backends.untrusted.one_line`. Items keep
the exact text; what is copied to the clipboard is what is shown (see
:meth:`ChatItem.action_copy`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Spacing
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Static

from backends.context import ContextEntry, Role, ToolCall
from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui import keymap
from tui.widgets.find import locate
from tui.widgets.reply import ReplyBody
from tui.widgets.segments import estimate_rows

DISPLAY_LIMIT = 20_000
"""Characters of a user message shown on screen; the rest is kept and copied in full."""

HISTORY_WINDOW = 16
"""How many entries of a stored conversation are drawn at first; older ones on demand."""

RELEASE_AFTER_S = 0.25
"""After scrolling, how soon parts of replies away from view give up their widgets."""


LARGE_TEXT = 100_000
"""Messages at least this long are searched for code blocks off the event loop."""


def code_blocks(markdown: str) -> list[str]:
    """The fenced and indented code blocks of a Markdown text, in order."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [token.content for token in tokens if token.type in ("fence", "code_block")]


class ChatItem(Widget, can_focus=True):
    """Base of everything shown in the conversation; selectable with the arrow keys."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(
        "message.copy", "message.copy_code", "message.previous", "message.next", "message.prompt"
    )

    @dataclass
    class LeaveToPrompt(Message):
        """The user wants to type again."""

    @dataclass
    class CopyCode(Message):
        """The user asked to copy a code block of ``item``; the screen offers a choice."""

        item: ChatItem
        blocks: list[str]

    def __init__(self, entry_id: str | None = None, *, classes: str = "") -> None:
        super().__init__(classes=f"chat-item {classes}".strip())
        self.entry_id = entry_id

    def copy_text(self) -> str:
        """What "copy" puts on the clipboard."""
        return ""

    def action_copy(self) -> None:
        # What is shown, not the raw text: control characters pasted from the clipboard
        # into a terminal would act there (ESC [ 201 ~ ends a bracketed paste early).
        text = printable(self.copy_text())
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text)} characters to the clipboard.", timeout=3)

    async def action_copy_code(self) -> None:
        text = self.copy_text()
        # Parsing megabytes of Markdown takes most of a second: off the event loop, so
        # keys keep acting meanwhile.
        blocks = (
            code_blocks(text)
            if len(text) < LARGE_TEXT
            else await asyncio.to_thread(code_blocks, text)
        )
        if not blocks:
            self.notify("This message has no code block.", severity="warning", timeout=3)
        elif len(blocks) == 1:
            block = printable(blocks[0])
            self.app.copy_to_clipboard(block)
            self.notify(f"Copied the code block ({len(block)} characters).", timeout=3)
        else:
            self.post_message(self.CopyCode(self, blocks))

    def _sibling(self, step: int) -> ChatItem | None:
        parent = self.parent
        if parent is None:
            return None
        items = [child for child in parent.children if isinstance(child, ChatItem)]
        position = items.index(self) + step
        return items[position] if 0 <= position < len(items) else None

    def action_previous(self) -> None:
        item = self._sibling(-1)
        if item is not None:
            item.focus()
        elif isinstance(self.parent, MessageLog) and self.parent.hidden_entries:
            self.post_message(MessageLog.LoadEarlier())

    def action_next(self) -> None:
        item = self._sibling(1)
        if item is None:
            self.post_message(self.LeaveToPrompt())
        else:
            item.focus()

    def action_prompt(self) -> None:
        self.post_message(self.LeaveToPrompt())


class UserMessage(ChatItem):
    """What the user sent."""

    def __init__(self, entry: ContextEntry) -> None:
        super().__init__(entry.id, classes="user")
        self.text = entry.content

    def compose(self) -> ComposeResult:
        yield Static("You", classes="speaker")
        shown = self.text
        if len(shown) > DISPLAY_LIMIT:
            hidden = len(shown) - DISPLAY_LIMIT
            shown = f"{shown[:DISPLAY_LIMIT]}\n… {hidden:,} more characters (press c to copy all)"
        yield Static(Content(printable(shown)), classes="body")

    def copy_text(self) -> str:
        return self.text


def _stop_label(finish_reason: str | None) -> str:
    if finish_reason == "stopped":
        return "⏹ stopped: the reply was cut short here"
    if finish_reason == "error":
        return "⚠ interrupted by an error: the reply is incomplete"
    return "… incomplete"


class AssistantMessage(ChatItem):
    """A reply, rendered as Markdown; streamed with :meth:`write` then :meth:`finish`.

    The Markdown is drawn in segments (:class:`tui.widgets.reply.ReplyBody`) so that a
    long reply costs what the screen shows, not its length.
    """

    def __init__(
        self, entry: ContextEntry | None = None, *, speaker: str = "Assistant", eager: bool = True
    ) -> None:
        super().__init__(entry.id if entry else None, classes="assistant")
        self.speaker = speaker
        self._eager = eager
        self.text = entry.content if entry else ""
        self._complete = entry.complete if entry else True  # a new reply: see finish()
        self._finish_reason = entry.finish_reason if entry else None
        self._pieces: list[str] = []
        self._body: ReplyBody | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content(one_line(self.speaker)), classes="speaker")
        yield self.body
        yield Static(classes="marker")

    def on_mount(self) -> None:
        if not self._complete:  # empty too: stopped before its first word
            self.mark(self._finish_reason)

    @property
    def body(self) -> ReplyBody:
        """The Markdown of the reply."""
        if self._body is None:
            self._body = ReplyBody(self.text, classes="body", eager=self._eager)
        return self._body

    @property
    def streaming(self) -> bool:
        return bool(self._pieces)

    async def write(self, piece: str) -> None:
        """Append one streamed piece (cheap: it is drawn with the next frame)."""
        self._pieces.append(piece)
        self.body.write(piece)

    async def finish(self, entry: ContextEntry | None) -> None:
        """End the stream and draw the final text, with its marker if incomplete."""
        if entry is not None:
            self.entry_id = entry.id
            self.text = entry.content
        else:
            self.text = "".join(self._pieces)
        self._pieces = []
        await self.body.finish(self.text)  # when the app is closing: only stops the stream
        if not self.is_attached:
            return  # the app is closing; the text is stored already
        if entry is not None and not entry.complete:
            self.mark(entry.finish_reason)

    def mark(self, finish_reason: str | None) -> None:
        marker = self.query_one(".marker", Static)
        marker.update(_stop_label(finish_reason))
        marker.add_class("shown")

    def copy_text(self) -> str:
        return self.text if not self._pieces else "".join(self._pieces)


class ToolCallItem(ChatItem):
    """A function call the model asked for: name, arguments and, later, the result."""

    RESULT_LIMIT = 600

    def __init__(self, call: ToolCall, entry_id: str | None = None) -> None:
        super().__init__(entry_id, classes="tool")
        self.call = call
        self.result: str | None = None
        self.outcome = "pending"
        """"pending", "ok", "error" or "declined"."""

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("⚙ Function call: ", "bold"), one_line(self.call.name)))
        yield Static(Content(printable(pretty_arguments(self.call.arguments))), classes="arguments")
        yield Static(Content(printable(self._result_text())), classes="result")

    def set_result(self, content: str, *, is_error: bool = False, approved: bool = True) -> None:
        """Record the call's outcome (before or after the item is mounted)."""
        self.result = content
        self.outcome = "declined" if not approved else "error" if is_error else "ok"
        self.set_class(self.outcome != "ok", "failed")
        if self.is_mounted:
            self.query_one(".result", Static).update(Content(printable(self._result_text())))

    def _result_text(self) -> str:
        if self.result is None:
            return "waiting for approval…"
        if self.outcome == "declined":
            return "✗ declined by you"
        shown = self.result
        if len(shown) > self.RESULT_LIMIT:
            shown = shown[: self.RESULT_LIMIT] + "…"
        return ("✗ failed: " if self.outcome == "error" else "→ ") + shown

    def copy_text(self) -> str:
        parts = [f"{self.call.name}({self.call.arguments})"]
        if self.result is not None:
            parts.append(self.result)
        return "\n".join(parts)


def pretty_arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


class ErrorItem(ChatItem):
    """An error shown where the user looks: what happened, why, and what to do."""

    def __init__(self, error: LLMError) -> None:
        super().__init__(classes="error")
        self.error = error

    def compose(self) -> ComposeResult:
        error = self.error
        yield Static(Content.assemble(("⚠ ", "bold"), (printable(error.description), "bold")))
        yield Static(Content(printable(error.reason)), classes="reason")
        yield Static(Content("→ " + printable(self.advice())), classes="suggestion")

    def advice(self) -> str:
        """What to do, in the app's words (its screens, the user's keys)."""
        from tui.advice import advice_in

        return advice_in(self.app, self.error)

    def copy_text(self) -> str:
        error = self.error
        return f"{error.description}\n{error.reason}\n{self.advice()}"


class NoticeItem(ChatItem):
    """Something worth knowing that is not an error (a trimmed context, an export path)."""

    def __init__(self, text: str) -> None:
        super().__init__(classes="notice")
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(Content("ℹ " + printable(self.text)))

    def copy_text(self) -> str:
        return self.text


def empty_hint(key: Callable[[str], str]) -> Content:
    """What an empty conversation shows; ``key`` names the key of a binding id."""
    return Content.assemble(
        ("A new conversation: type below, Enter sends.", "bold"),
        f"\n{key('app.help')} keys · {key('app.palette')} commands · {key('chat.model')} model",
        f" · {key('chat.conversations')} earlier chats",
    )


class MessageLog(VerticalScroll):
    """The scrolling conversation; follows the bottom unless the user scrolled up."""

    @dataclass
    class LoadEarlier(Message):
        """The user asked to see the older entries of a long conversation."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hidden_entries: list[ContextEntry] = []
        """Older entries of a long conversation that are not drawn yet."""
        self.speaker = "Assistant"
        """How assistant messages of the shown conversation are labelled."""
        self._release_due = False

    def on_mount(self) -> None:
        self.anchor()
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def _scrolled(self) -> None:
        if not self._release_due:
            self._release_due = True
            self.set_timer(RELEASE_AFTER_S, self._release_far)

    async def _release_far(self) -> None:
        """Let replies give up the Markdown of parts more than half a screen away.

        Every frame lays out every widget: a screen of built Markdown costs 20-30 ms a
        frame here, three screens 60-80 ms.
        """
        self._release_due = False
        margin = self.size.height // 2
        area = self.region.grow(Spacing(margin, 0, margin, 0))
        for item in self.items():
            if isinstance(item, AssistantMessage):
                await item.body.release_far(area)

    def items(self) -> list[ChatItem]:
        return [child for child in self.children if isinstance(child, ChatItem)]

    def item_for(self, entry_id: str) -> ChatItem | None:
        return next((item for item in self.items() if item.entry_id == entry_id), None)

    async def clear(self) -> None:
        self.hidden_entries = []
        await self.remove_children()

    async def add(self, *items: Widget) -> None:
        await self.mount_all(items)

    async def show_entries(
        self,
        entries: list[ContextEntry],
        *,
        speaker: str = "Assistant",
        window: int = HISTORY_WINDOW,
    ) -> None:
        """Draw a stored conversation: its last ``window`` entries, the rest on demand."""
        await self.clear()
        self.speaker = speaker
        visible = [e for e in entries if e.role is not Role.SYSTEM]
        cut = max(0, len(visible) - window)
        # Never start the window between a tool call and its result.
        while 0 < cut < len(visible) and visible[cut].role is Role.TOOL:
            cut -= 1
        self.hidden_entries = visible[:cut]
        shown = visible[cut:]
        # What fills the screen is drawn at once; replies above it when scrolled to.
        rows = self.size.height or self.app.size.height
        width = self.size.width or self.app.size.width
        eager_from = len(shown)
        while eager_from > 0 and rows > 0:
            eager_from -= 1
            rows -= estimate_rows(shown[eager_from].content, width) + 2
        widgets = render_entries(shown, self.speaker, eager_from=eager_from)
        if self.hidden_entries:
            widgets.insert(0, self._earlier_button())
        await self.mount_all(widgets)
        self.anchor()

    def _earlier_button(self) -> Button:
        count = len(self.hidden_entries)
        return Button(f"▲ Show {count} earlier messages", id="earlier", compact=True)

    async def show_earlier(self, *, until: str | None = None) -> None:
        """Draw hidden older entries: one more window, or back to entry ``until``."""
        if not self.hidden_entries:
            return
        cut = max(0, len(self.hidden_entries) - HISTORY_WINDOW)
        if until is not None:
            ids = [entry.id for entry in self.hidden_entries]
            if until in ids:
                cut = min(cut, ids.index(until))
        while cut > 0 and self.hidden_entries[cut].role is Role.TOOL:
            cut -= 1
        batch = self.hidden_entries[cut:]
        self.hidden_entries = self.hidden_entries[:cut]
        await self.query("#earlier").remove()
        widgets = render_entries(batch, self.speaker, eager_from=len(batch))
        if self.hidden_entries:
            widgets.insert(0, self._earlier_button())
        await self.mount_all(widgets, before=0) if self.children else await self.mount_all(widgets)

    async def reveal(
        self, entry_id: str, *, match: Callable[[str], int | None] | None = None
    ) -> ChatItem | None:
        """Make the item of ``entry_id`` visible, select it and return it.

        ``match`` finds the place to show in a reply's text (the reply's start otherwise).
        """
        item = self.item_for(entry_id)
        if item is None and any(e.id == entry_id for e in self.hidden_entries):
            await self.show_earlier(until=entry_id)
            item = self.item_for(entry_id)
        if item is not None:
            self.release_anchor()
            item.focus(scroll_visible=False)
            self.scroll_to_widget(item, top=True, animate=False)
            item.add_class("found")
            self.set_timer(2.0, lambda: item.remove_class("found"))
            offset = (
                match(item.body.source) if match and isinstance(item, AssistantMessage) else None
            )
            if isinstance(item, AssistantMessage) and offset is not None:
                await self.show_offset(item, offset)
        return item

    async def show_offset(self, item: AssistantMessage, offset: int) -> bool:
        """Scroll so that character ``offset`` of the reply ``item`` is in view.

        The reply builds the part that holds it; parts built around it may change
        height, so the position is checked again after each frame (a few times).
        """
        shown = False
        for attempt in range(4):
            found = await locate(item.body, offset)
            if found is None:
                return False
            widget, row = found
            view = self.scrollable_content_region
            top = round(self.scroll_y)
            y = widget.region.y - view.y + top + row
            shown = top <= y < top + view.height
            if shown and attempt:
                break
            self.scroll_to(y=max(0, y - view.height // 3), animate=False, immediate=True)
            await _next_frame(self)
        return shown

    def page(self, pages: int) -> None:
        """Scroll by ``pages`` screens (down; up when negative)."""
        height = self.scrollable_content_region.height
        self.scroll_to(y=self.scroll_y + pages * height, animate=False)

    def show_hint(self, hint: Content) -> None:
        """Show ``hint`` in an empty conversation (until :meth:`hide_hint` or a clear)."""
        self.hide_hint()
        self.mount(Static(hint, id="empty-hint"))

    def hide_hint(self) -> None:
        self.query("#empty-hint").remove()

    async def remove_after(self, entry_id: str) -> None:
        """Remove every item after the one showing ``entry_id`` (the reply, for retry)."""
        items = self.items()
        anchor = self.item_for(entry_id)
        if anchor is None:
            return
        doomed = items[items.index(anchor) + 1 :]
        if doomed:
            await self.remove_children(doomed)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "earlier":
            event.stop()
            self.post_message(self.LoadEarlier())


async def _next_frame(widget: Widget) -> None:
    """Wait until ``widget``'s screen has been laid out and drawn once more."""
    drawn = asyncio.Event()
    widget.call_after_refresh(drawn.set)
    await drawn.wait()


def render_entries(
    entries: list[ContextEntry], speaker: str = "Assistant", *, eager_from: int = 0
) -> list[Widget]:
    """The widgets that show stored entries (tool results join their calls).

    Replies from index ``eager_from`` on are drawn at once; earlier ones when they are
    first scrolled into view.
    """
    widgets: list[Widget] = []
    calls: dict[str, ToolCallItem] = {}
    for index, entry in enumerate(entries):
        if entry.role is Role.USER:
            widgets.append(UserMessage(entry))
        elif entry.role is Role.ASSISTANT:
            if entry.content or not entry.tool_calls:
                eager = index >= eager_from
                widgets.append(AssistantMessage(entry, speaker=speaker, eager=eager))
            for call in entry.tool_calls:
                calls[call.id] = ToolCallItem(call, entry.id)
                widgets.append(calls[call.id])
        elif entry.role is Role.TOOL:
            found = calls.get(entry.tool_call_id or "")
            if found is None:
                found = ToolCallItem(
                    ToolCall(entry.tool_call_id or "", entry.name or "function", ""), entry.id
                )
                widgets.append(found)
            found.set_result(entry.content)
    return widgets
