"""The conversation view: one focusable item per message, tool call, error or notice.

Items only display; they never talk to a model or the store. The chat screen mounts
them, streams text into :class:`AssistantMessage` and listens for the messages they post
(for example :class:`ChatItem.LeaveToPrompt`).

Everything they show came from outside (replies, tool calls, server errors, model ids):
it is drawn as plain text (``Content``, never markup) after
:func:`backends.untrusted.printable` or :func:`~backends.untrusted.one_line`. Items keep
the exact text; what is copied to the clipboard is what is shown (see
:meth:`ChatItem.action_copy`). The items are defined in :mod:`tui.widgets.chat_items`
and re-exported here; this module holds the :class:`MessageLog` that shows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.content import Content
from textual.geometry import Spacing
from textual.widget import Widget
from textual.widgets import Button, Static

from backends.context import ContextEntry, Role, ToolCall
from tui.widgets.chat_items import (
    DISPLAY_LIMIT,
    LARGE_TEXT,
    AssistantMessage,
    ChatItem,
    EntryLog,
    ErrorItem,
    NoticeItem,
    ToolCallItem,
    UserMessage,
    code_blocks,
    pretty_arguments,
)
from tui.widgets.find import locate
from tui.widgets.segments import estimate_rows

__all__ = [
    "DISPLAY_LIMIT",
    "HISTORY_WINDOW",
    "LARGE_TEXT",
    "RELEASE_AFTER_S",
    "AssistantMessage",
    "ChatItem",
    "EntryLog",
    "ErrorItem",
    "MessageLog",
    "NoticeItem",
    "ToolCallItem",
    "UserMessage",
    "code_blocks",
    "empty_hint",
    "pretty_arguments",
    "render_entries",
]

HISTORY_WINDOW = 16
"""How many entries of a stored conversation are drawn at first; older ones on demand."""

RELEASE_AFTER_S = 0.25
"""After scrolling, how soon parts of replies away from view give up their widgets."""


def empty_hint(key: Callable[[str], str]) -> Content:
    """What an empty conversation shows; ``key`` names the key of a binding id."""
    return Content.assemble(
        ("A new conversation: type below, Enter sends.", "bold"),
        f"\n{key('app.help')} keys · {key('app.palette')} commands · {key('chat.model')} model",
        f" · {key('chat.conversations')} earlier chats",
    )


class MessageLog(EntryLog):
    """The scrolling conversation; follows the bottom unless the user scrolled up."""

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
