"""A reply drawn in segments, so that drawing it costs what the screen shows, not its length.

Textual's Markdown widget builds one widget per block, and every layout of the screen
visits all of them: a 10,000-token reply has hundreds of blocks and more than a thousand
widgets. :class:`ReplyBody` therefore cuts its text at safe block boundaries (see
:mod:`tui.widgets.segments`) into :class:`Segment` widgets of about ``SEGMENT_CHARS``
characters:

* while a reply streams, only the last segment (the tail) is a live Markdown widget, fed
  through ``Markdown.get_stream`` at most :data:`FRAME_S` apart; finished segments are
  frozen and never parsed again;
* a segment away from the visible part of the conversation is a placeholder of the same
  height without children: it builds its Markdown when it is drawn (scrolled into view)
  and gives it up when it is more than a screen away (:meth:`ReplyBody.release_far`);
* when the reply ends, the tail gets its final ``Markdown.update`` if what streamed into
  it differs from its text, and the segments on screen are built before the next frame.

A long code block (a whole file) is cut off the Markdown and drawn line by line, as a
:class:`tui.widgets.code.CodeBlock` between segments (see :mod:`tui.widgets.segments`):
while it streams its parts are added to it; what is copied comes from the message's
text, whole.

A reply is untrusted text: every piece, the first text and the final text pass through
:func:`backends.untrusted.printable` before they are cut, streamed or drawn, so control
sequences from a server never reach the terminal (the message keeps the exact text).

Cutting never changes what is drawn: CSS makes the gap between two segments the one
between two blocks of a single document (``tests/tui/test_render.py`` compares both).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.geometry import Region, Spacing
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from backends.untrusted import printable
from tui.widgets.code import CodeBlock, QuickFence, prepare_lexers
from tui.widgets.reply_segment import ReplyMarkdown, Segment
from tui.widgets.segments import (
    Part,
    Splitter,
    estimate_rows,
    is_code,
    split_markdown,
)

FRAME_S = 1 / 30
"""Least time between two updates of a streaming reply (what arrived meanwhile is joined)."""

DRAW_SHARE = 2.0
"""After an update that took t seconds to draw, wait at least this times t for the next."""


class ReplyBody(Widget):
    """The Markdown of one reply, in segments; streamed with :meth:`write` and :meth:`finish`."""

    DEFAULT_CSS = "ReplyBody { height: auto; }"

    def __init__(self, text: str = "", *, classes: str = "", eager: bool = True) -> None:
        """``eager=False``: even a short text waits until it is drawn on screen."""
        super().__init__(classes=classes)
        self._initial = printable(text)
        self._eager = eager
        self._splitter: Splitter | None = None
        self._finished: list[str] = []
        """Parts the splitter finished that are not drawn yet."""
        self._tail: Segment | None = None
        self._code: CodeBlock | None = None
        """The long code block that streams (its last part is still to come)."""
        self._stream: MarkdownStream | None = None
        self._drawer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._ending = False
        self._ended = asyncio.Event()

    def compose(self) -> ComposeResult:
        text, self._initial = self._initial, ""  # the parts keep it
        if not text:
            # A reply about to stream: its first segment is ready for the first piece.
            self._tail = Segment([""], build=True, joined=False)
            yield self._tail
            return
        parts = split_markdown(text)
        if len(parts) == 1 and self._eager and not is_code(parts[0]):
            yield Segment(parts, build=True, joined=False)  # a short reply: at once
        else:
            yield from self._widgets(parts)

    def _widgets(self, parts: list[str]) -> list[Widget]:
        """Widgets for ``parts`` of a whole reply: code blocks for the long code blocks,
        placeholders for the rest (each run of them: its last part alone, the others as
        one group)."""
        widgets: list[Widget] = []
        run: list[str] = []
        code: CodeBlock | None = None
        for part in parts:
            if not isinstance(part, Part):
                run.append(part)
                continue
            if code is None:
                widgets += self._placeholders(run, joined=bool(widgets))
                run = []
                code = CodeBlock(first=not widgets)
                widgets.append(code)
            code.commit(part)
            if not part.continues:
                code = None
        widgets += self._placeholders(run, joined=bool(widgets))
        return widgets

    def _placeholders(self, parts: list[str], *, joined: bool) -> list[Segment]:
        """Placeholders for ``parts``: the last one alone, the others as one group."""
        width = self._width()
        groups = [parts[:-1], parts[-1:]] if len(parts) > 1 else [parts]
        return [
            Segment(group, joined=joined or index > 0, width=width)
            for index, group in enumerate(groups)
            if group
        ]

    @property
    def segments(self) -> list[Segment]:
        return [child for child in self.children if isinstance(child, Segment)]

    @property
    def code_blocks(self) -> list[CodeBlock]:
        """The long code blocks of the reply, drawn line by line."""
        return [child for child in self.children if isinstance(child, CodeBlock)]

    @property
    def source(self) -> str:
        """The Markdown drawn so far (placeholders count with their text), neutralised."""
        return "".join(
            child.text for child in self.children if isinstance(child, (Segment, CodeBlock))
        )

    @property
    def streaming(self) -> bool:
        return self._splitter is not None

    # Streaming -----------------------------------------------------------------------------
    def write(self, piece: str) -> None:
        """Take one streamed piece; it is drawn with the next frame (cheap: no parsing here)."""
        piece = printable(piece)
        if self._splitter is None:
            self._splitter = Splitter()
        self._finished += self._splitter.feed(piece)
        self._wake.set()
        if self._drawer is None:
            self._drawer = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._ending:
            await self._wake.wait()
            self._wake.clear()
            if self._ending or self._splitter is None:
                return
            started = time.perf_counter()
            await self._draw(self._splitter.tail)
            if self._ending:
                return
            # What scrolled away as the reply grew gives up its widgets: every frame
            # lays out every widget (the log's scroll watcher does not see this growth).
            await self.release_far()
            drawn = asyncio.Event()
            self.call_after_refresh(drawn.set)
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ended.wait(), FRAME_S)
                return
            await drawn.wait()
            # When text comes faster than it can be drawn, draw less often: drawing
            # takes at most a third of the time and the reply arrives sooner.
            pause = DRAW_SHARE * (time.perf_counter() - started) - FRAME_S
            if pause > 0:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), pause)

    async def finish(self, text: str) -> None:
        """The reply ended with ``text``: draw what is left and the segments on screen."""
        text = printable(text)
        self._ending = True
        self._ended.set()
        self._wake.set()
        task, self._drawer = self._drawer, None
        if task is not None:
            await task
        splitter, self._splitter = self._splitter, None
        if not self.is_attached:
            await self._stop_stream()
            return
        if splitter is not None and splitter.total == len(text):
            await self._draw(splitter.close())
            await self._stop_stream()
            tail = self._tail
            if tail is not None and tail.markdown is not None:
                if tail.markdown.source != tail.text:
                    await tail.markdown.update(tail.text)
                tail.join()
        else:
            # Nothing streamed, or the final text is not what streamed: draw it afresh.
            await self._stop_stream()
            await self.remove_children()
            if text:
                await self.mount_all(self._widgets(split_markdown(text)))
        self._tail = None
        self._code = None
        self._finished = []
        await self.build_visible()
        await self.release_far()

    async def _draw(self, tail_text: str) -> None:
        finished, self._finished = self._finished, []
        new: list[Widget] = []
        passed: list[str] = []  # Markdown that streamed past faster than it could be drawn
        for index, part in enumerate(finished):
            if isinstance(part, Part):
                new += self._passed(passed, new)
                await self._add_code(part, new)
            elif self._tail is not None:
                # The tail's text is the start of this part: complete the tail.
                tail, self._tail = self._tail, None
                after = "".join(finished[index + 1 :]) + tail_text
                rows_after = estimate_rows(after, self._width())
                await self._freeze(tail, part, keep=rows_after < self._viewport_rows())
            else:
                passed.append(part)
        new += self._passed(passed, new)
        if is_code(tail_text):
            await self._add_code(tail_text, new, arriving=True)
            if new:
                await self.mount_all(new)
            return
        if self._tail is None:
            self._tail = Segment([""], build=True, joined=bool(self.children or new))
            new.append(self._tail)
        if new:
            await self.mount_all(new)
        tail = self._tail
        if len(tail_text) > len(tail.text) and tail.markdown is not None:
            delta = tail.assign(tail_text)
            if self._stream is None:
                self._stream = Markdown.get_stream(tail.markdown)
            await self._stream.write(delta)

    def _passed(self, parts: list[str], new: list[Widget]) -> list[Widget]:
        """One placeholder for ``parts`` (which it empties), if any."""
        if not parts:
            return []
        placeholder = Segment(parts[:], joined=bool(self.children or new), width=self._width())
        parts.clear()
        return [placeholder]

    async def _add_code(self, part: str, new: list[Widget], *, arriving: bool = False) -> None:
        """Draw ``part`` of a long code block: finished, or still ``arriving``."""
        if self._tail is not None:
            # The tail's text is the start of this code block, now drawn as code.
            tail, self._tail = self._tail, None
            await self._stop_stream()
            await tail.remove()
        if self._code is None:
            self._code = CodeBlock(first=not (self.children or new))
            new.append(self._code)
        if arriving:
            self._code.set_tail(part)
        else:
            self._code.commit(part)
            if not (isinstance(part, Part) and part.continues):
                self._code = None

    async def _freeze(self, segment: Segment, text: str, *, keep: bool) -> None:
        """The segment is finished: complete it if it stays in view, else release it."""
        rest = segment.assign(text)
        if keep and segment.markdown is not None:
            if rest:
                if self._stream is None:
                    self._stream = Markdown.get_stream(segment.markdown)
                await self._stream.write(rest)
            await self._stop_stream()
            if segment.markdown.source != segment.text:
                await segment.markdown.update(segment.text)
            segment.join()
        else:
            await self._stop_stream()
            await segment.release(estimate_rows(segment.text, self._width()))

    async def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()

    def on_resize(self) -> None:
        width = self.size.width
        for segment in self.segments:
            segment.rewrap(width)

    def on_unmount(self) -> None:
        self._ending = True
        self._ended.set()
        self._wake.set()

    # Visibility ---------------------------------------------------------------------------
    async def build_visible(self) -> None:
        """Build the segments that fill the last screen of the reply, one a frame."""
        rows = self._viewport_rows()
        width = self._width()
        position = 1
        while rows > 0 and self.is_attached:
            children = [c for c in self.children if isinstance(c, (Segment, CodeBlock))]
            if position > len(children):
                break
            segment = children[-position]
            position += 1
            if isinstance(segment, CodeBlock):
                rows -= segment.size.height  # it draws what it shows by itself
                continue
            if segment.grouped:
                await segment.split()
                position -= 1
                continue
            rows -= segment.size.height or estimate_rows(segment.text, width)
            if not segment.built:
                # New widgets cost most in their first layout: one segment a frame.
                drawn = asyncio.Event()
                self.call_after_refresh(drawn.set)
                await drawn.wait()
                await segment.build()

    async def release_far(self, area: Region | None = None) -> None:
        """Give up the Markdown of segments outside ``area`` (screen coordinates).

        By default the area is the visible part of the scrolling container and half its
        height above and below.
        """
        if area is None:
            scroller = next((n for n in self.ancestors if isinstance(n, ScrollableContainer)), None)
            if scroller is None:
                return
            margin = scroller.size.height // 2
            area = scroller.region.grow(Spacing(margin, 0, margin, 0))
        for segment in self.segments:
            far = segment.size.height and not segment.region.overlaps(area)
            if far and segment.built and segment is not self._tail:
                await segment.release()
        for block in self.code_blocks:
            if not block.region.overlaps(area):
                block.release()

    def _width(self) -> int:
        if self.size.width:
            return self.size.width
        return max(self.app.size.width - 30, 20) if self.is_attached else 80

    def _viewport_rows(self) -> int:
        scroller = next((n for n in self.ancestors if isinstance(n, ScrollableContainer)), None)
        if scroller is not None and scroller.size.height:
            return scroller.size.height
        return self.app.size.height if self.is_attached else 24


__all__ = ["FRAME_S", "QuickFence", "ReplyBody", "ReplyMarkdown", "Segment", "prepare_lexers"]
