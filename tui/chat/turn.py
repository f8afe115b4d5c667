"""One reply as it streams: drawn into the message log and kept in the store.

The chat screen creates a :class:`Turn` per reply and feeds it every event of
``session.stream()``. The turn saves the streaming text at least once a second
(:class:`tui.store.Autosaver`), stores tool calls and results as they happen and, in
:meth:`Turn.close`, stores everything from the user's message on, drops entries the
context replaced, draws the final text once and reports speed and token usage. Every
write goes through the screen's :class:`tui.store_writer.StoreWriter`: it never blocks,
keeps the order and reports failures to the screen itself. (Not a screen: it lives in
:mod:`tui.chat` with the other parts of the chat.)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from backends.context import Context, ContextEntry
from backends.events import (
    Event,
    Notice,
    StateChanged,
    TextDelta,
    ToolCallRequested,
    ToolCallResult,
    Usage,
)
from tui.widgets.messages import AssistantMessage, MessageLog, NoticeItem, ToolCallItem
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from tui.store import Conversation
    from tui.store_writer import StoreWriter


class Turn:
    """The state of one reply: its view, its tool calls, what was saved, its speed."""

    def __init__(
        self,
        *,
        log: MessageLog,
        status: StatusBar,
        context: Context,
        writer: StoreWriter,
        conversation: Conversation | None,
        user_id: str,
        speaker: str,
    ) -> None:
        from tui.store_writer import Autosaver

        self.log = log
        self.status = status
        self.context = context
        self.writer = writer
        self.conversation = conversation
        self.user_id = user_id
        self.speaker = speaker
        self.saver = (
            Autosaver(writer.sink(conversation, context), conversation.id)
            if conversation is not None
            else None
        )
        self.saved: set[str] = set()
        """Ids of entries this turn wrote, to delete those the context later replaced."""
        self.view: AssistantMessage | None = None
        self.tools: dict[str, ToolCallItem] = {}
        self.pieces = 0
        """Pieces of the stream so far (about one token each), for the figures of a stop."""
        self.first: float | None = None
        self.usage: Usage | None = None
        status.clear_figures()  # the last reply's figures are not this one's

    async def handle(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            await self._text(event.text, event.chunks)
        elif isinstance(event, ToolCallRequested):
            owner = _entry_with_call(self.context, event.call.id)
            if self.view is not None:
                # The text before the calls now lives in the entry that holds them.
                await self.view.finish(owner)
                self.view = None
            self.tools[event.call.id] = ToolCallItem(event.call, owner.id if owner else None)
            await self.log.add(self.tools[event.call.id])
        elif isinstance(event, ToolCallResult):
            done = self.tools.get(event.call.id)
            if done is not None:
                done.set_result(event.content, is_error=event.is_error, approved=event.approved)
            self.persist()
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, StateChanged):
            self.status.state = event.state
        elif isinstance(event, Notice):
            await self.log.add(NoticeItem(event.text))

    async def _text(self, text: str, chunks: int) -> None:
        if self.view is None:
            self.view = AssistantMessage(speaker=self.speaker)
            await self.log.add(self.view)
        self.first = self.first or time.monotonic()
        self.pieces += chunks
        await self.view.write(text)
        streaming = self.context.streaming_entry()
        if streaming is not None:
            self.view.entry_id = streaming.id
            if self.saver is not None and self.saver.update(streaming):
                self.saved.add(streaming.id)

    def persist(self) -> None:
        """Store every entry from the user's message on; drop replaced streaming entries."""
        if self.conversation is None:
            return
        ids = [entry.id for entry in self.context]
        start = ids.index(self.user_id) if self.user_id in ids else len(ids)
        # Replaced entries go first: a new entry is stored only after the one before it
        # in the context (see StoreWriter.save).
        stale = self.saved - set(ids)
        if stale:
            self.writer.delete_entries(self.conversation, sorted(stale))
            self.saved -= stale
        for entry in self.context.entries[start:]:
            self.writer.save(self.conversation, self.context, entry)
            self.saved.add(entry.id)

    async def close(self, *, stopped: bool = False) -> None:
        """The reply ended, stopped or failed: save first, then draw the final state.

        Stopped before anything came, the reply is an empty one marked stopped, shown
        and stored as such (the user's message is not left without an answer).
        """
        empty = None
        if stopped and not self._answered():
            empty = self.context.append_assistant("")
            self.context.mark_interrupted("stopped")
        self.persist()
        if empty is not None:
            await self.log.add(AssistantMessage(empty, speaker=self.speaker))
        if self.view is not None:
            entry = next((e for e in self.context if e.id == self.view.entry_id), None)
            await self.view.finish(entry)
        self._report_speed()

    def _answered(self) -> bool:
        """Whether anything follows the user's message in the context."""
        ids = [entry.id for entry in self.context]
        return self.user_id not in ids or ids[-1] != self.user_id

    def _report_speed(self) -> None:
        if self.first is None:
            return
        elapsed = max(time.monotonic() - self.first, 1e-6)
        usage = self.usage
        tokens = usage.completion_tokens if usage is not None else self.pieces
        self.status.estimated = usage is None
        self.status.speed = tokens / elapsed if tokens > 1 else None
        self.status.usage = (
            (usage.prompt_tokens, usage.completion_tokens) if usage else (0, self.pieces)
        )


def _entry_with_call(context: Context, call_id: str) -> ContextEntry | None:
    for entry in reversed(context.entries):
        if any(call.id == call_id for call in entry.tool_calls):
            return entry
    return None
