"""The items of the conversation view: messages, tool calls, errors and notices.

Split from :mod:`tui.widgets.messages` (which re-exports every name here and holds the
:class:`~tui.widgets.messages.MessageLog` they are shown in); nothing here imports it.
Everything shown came from outside and is drawn as plain text after
:func:`backends.untrusted.printable` or :func:`~backends.untrusted.one_line`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from backends.context import ContextEntry, ToolCall
from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui import keymap
from tui.widgets.reply import ReplyBody

DISPLAY_LIMIT = 20_000
"""Characters of a user message shown on screen; the rest is kept and copied in full."""


LARGE_TEXT = 100_000
"""Messages at least this long are searched for code blocks off the event loop."""


def code_blocks(markdown: str) -> list[str]:
    """The fenced and indented code blocks of a Markdown text, in order."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [token.content for token in tokens if token.type in ("fence", "code_block")]


class EntryLog(VerticalScroll):
    """What chat items are shown in: a log that may hold older entries back.

    The base of :class:`tui.widgets.messages.MessageLog`, here so that a
    :class:`ChatItem` can ask for the earlier entries without importing it.
    """

    @dataclass
    class LoadEarlier(Message):
        """The user asked to see the older entries of a long conversation."""

    hidden_entries: list[ContextEntry]
    """Older entries of a long conversation that are not drawn yet."""


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
        elif isinstance(self.parent, EntryLog) and self.parent.hidden_entries:
            self.post_message(EntryLog.LoadEarlier())

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
