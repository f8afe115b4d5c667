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

A reply is untrusted text: every piece, the first text and the final text pass through
:func:`backends.untrusted.printable` before they are cut, streamed or drawn, so control
sequences from a server never reach the terminal (the message keeps the exact text).

Cutting never changes what is drawn: CSS makes the gap between two segments the one
between two blocks of a single document (``tests/tui/test_render.py`` compares both).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.content import Content
from textual.geometry import Region, Spacing
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock, MarkdownFence, MarkdownStream

from backends.untrusted import printable
from tui.widgets.segments import Splitter, estimate_rows, split_markdown

FRAME_S = 1 / 30
"""Least time between two updates of a streaming reply (what arrived meanwhile is joined)."""

DRAW_SHARE = 2.0
"""After an update that took t seconds to draw, wait at least this times t for the next."""


class QuickFence(MarkdownFence):
    """A code block that never makes Pygments search for its language.

    Without a language Textual guesses with Pygments' ``guess_lexer``, which imports
    every lexer the first time (about half a second) and tries them all each time; a
    language Pygments does not know makes it scan the installed packages for plugins
    (0.4 s here). While a reply streams that would happen on every update of the block.
    Such blocks are shown as plain text instead.
    """

    @classmethod
    def highlight(cls, code: str, language: str, ansi: bool = False, dark: bool = False) -> Content:
        name = language.split()[0].lower() if language.strip() else ""
        return super().highlight(code, name if name in _known_languages() else "text", ansi, dark)


def prepare_lexers(languages: Iterable[str]) -> list[str]:
    """Compile the rules of these languages' lexers now; returns the names that failed.

    Pygments compiles a lexer's rules when it is first used, which would otherwise
    happen while a reply is drawn (see :mod:`tui.warmup`).
    """
    from pygments.lexers import get_lexer_by_name

    failed = []
    for name in languages:
        if name not in _known_languages():
            failed.append(name)
            continue
        try:
            get_lexer_by_name(name)
        except Exception:  # a lexer that fails to build: its blocks fall back to plain text
            failed.append(name)
    return failed


@functools.cache
def _known_languages() -> frozenset[str]:
    """The names of Pygments' own lexers (its plugins are left out)."""
    from pygments.lexers import get_all_lexers

    return frozenset(
        alias.lower()
        for _name, aliases, _files, _types in get_all_lexers(plugins=False)
        for alias in aliases
    )


class ReplyMarkdown(Markdown):
    """Textual's Markdown with :class:`QuickFence` for code blocks."""

    BLOCKS: dict[str, type[MarkdownBlock]] = {  # noqa: RUF012 (as Markdown declares it)
        **Markdown.BLOCKS,
        "fence": QuickFence,
        "code_block": QuickFence,
    }


class Segment(Widget):
    """Part of a reply: its Markdown while near the screen, else an empty box as tall.

    A placeholder may stand for several parts in a row (text that streamed past faster
    than it could be drawn); when it comes into view it splits into one per part.
    """

    DEFAULT_CSS = "Segment { height: auto; }"

    def __init__(
        self,
        parts: Sequence[str],
        *,
        build: bool = False,
        joined: bool,
        width: int = 80,
        part_rows: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classes="-joined" if joined else "")
        self.parts = list(parts)
        self.text = "".join(parts)
        """The Markdown source (of the tail while streaming: what was drawn so far)."""
        self.markdown: ReplyMarkdown | None = ReplyMarkdown(self.text) if build else None
        self._width = width
        self._part_rows = (
            list(part_rows)
            if part_rows is not None
            else [0 if build else estimate_rows(part, width) for part in self.parts]
        )
        self._rows = sum(self._part_rows)
        self._pending = False
        self._compensate: tuple[ScrollableContainer, int] | None = None
        self._joined: Widget | None = None

    def compose(self) -> ComposeResult:
        if self.markdown is not None:
            yield self.markdown

    def on_mount(self) -> None:
        if self.markdown is None:
            self.styles.height = self._rows

    @property
    def built(self) -> bool:
        return self.markdown is not None

    @property
    def grouped(self) -> bool:
        """True for a placeholder that stands for several parts."""
        return len(self.parts) > 1

    def render(self) -> str:
        # Only called for rows that are on screen: time to build the Markdown, if the
        # segment is still on screen after this refresh (a reply that grows scrolls on).
        if self.markdown is None and not self._pending:
            self._pending = True
            self.call_after_refresh(self._build_if_shown)
        return ""

    async def _build_if_shown(self) -> None:
        self._pending = False
        scroller = self._scroller()
        if scroller is None:
            await self.build()
        elif self.region.overlaps(scroller.region):
            if self.grouped:
                # Split off the part at the top of the visible rows (those below it, if
                # any are on screen, are split off with the next frame).
                await self.split(self._part_at(scroller.region.y - self.region.y))
            else:
                await self.build()

    def _scroller(self) -> ScrollableContainer | None:
        return next((n for n in self.ancestors if isinstance(n, ScrollableContainer)), None)

    async def build(self) -> None:
        """Draw the Markdown of this segment (it is on screen or about to be)."""
        if self.markdown is not None or not self.is_attached or self.parent is None:
            return
        if self.grouped:
            await self.split()
            return
        scroller = self._scroller()
        # Above the visible rows, a change of height would move what the user reads.
        if (
            scroller is not None
            and scroller.scroll_y < scroller.max_scroll_y
            and self.region.bottom <= scroller.scrollable_content_region.y
        ):
            self._compensate = (scroller, self.size.height)
        self.markdown = ReplyMarkdown(self.text)
        await self.mount(self.markdown)
        self.styles.height = "auto"

    async def split(self, at: int | None = None) -> None:
        """Stand aside for part ``at`` (default: the last) alone and groups around it.

        Together they are as tall as this placeholder, so nothing on screen moves.
        """
        parent = self.parent
        if not self.grouped or not isinstance(parent, Widget):
            return
        at = len(self.parts) - 1 if at is None else max(0, min(at, len(self.parts) - 1))
        cuts = [(0, at), (at, at + 1), (at + 1, len(self.parts))]
        joined = self.has_class("-joined")
        replacements = [
            Segment(
                self.parts[start:end],
                joined=joined or index > 0,
                width=self._width,
                part_rows=self._part_rows[start:end],
            )
            for index, (start, end) in enumerate((a, b) for a, b in cuts if b > a)
        ]
        self.parts = []
        await parent.mount_all(replacements, before=self)
        await self.remove()

    def rewrap(self, width: int) -> None:
        """The reply is drawn at ``width`` columns now: estimate this placeholder again."""
        if self.markdown is None and width != self._width:
            self._width = width
            self._part_rows = [estimate_rows(part, width) for part in self.parts]
            self._rows = sum(self._part_rows)
            self.styles.height = self._rows

    def _part_at(self, row: int) -> int:
        """The index of the part drawn ``row`` rows below the top of this placeholder."""
        for index, rows in enumerate(self._part_rows):
            row -= rows
            if row < 0:
                return index
        return len(self.parts) - 1

    async def release(self, rows: int | None = None) -> None:
        """Give up the Markdown; keep the height (measured, or ``rows`` if given)."""
        if self.markdown is None:
            return
        height = rows if rows is not None else self.size.height
        markdown, self.markdown = self.markdown, None
        self._width = self.size.width or self._width
        self._part_rows = [max(height, 1)]
        self.styles.height = max(height, 1)
        if markdown.is_attached:
            await markdown.remove()

    def join(self) -> None:
        """Space this segment from the one before as blocks of one document are spaced.

        In one document the margins of adjacent blocks collapse to the larger one; every
        block ends with a bottom margin of 1, so a block of a following segment starts
        one row less further down. (An inline style: a ``:first-child`` rule would make
        Textual restyle every block of a segment whenever a block is added.)
        """
        if self.markdown is None or not self.has_class("-joined"):
            return
        first = next(iter(self.markdown.children), None)
        if first is not None and first is not self._joined:
            self._joined = first
            margin = first.styles.margin
            if margin.top:
                first.styles.margin = (margin.top - 1, margin.right, margin.bottom, margin.left)

    def on_markdown_table_of_contents_updated(self, event: Markdown.TableOfContentsUpdated) -> None:
        # Posted when the Markdown has (re)built its blocks.
        event.stop()
        self.join()

    def on_resize(self) -> None:
        self.join()
        if self._compensate is not None:
            scroller, before = self._compensate
            self._compensate = None
            delta = self.size.height - before
            if delta:
                scroller.scroll_to(y=scroller.scroll_y + delta, animate=False, immediate=True)


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
        self._stream: MarkdownStream | None = None
        self._drawer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._ending = False
        self._ended = asyncio.Event()

    def compose(self) -> ComposeResult:
        if not self._initial:
            # A reply about to stream: its first segment is ready for the first piece.
            self._tail = Segment([""], build=True, joined=False)
            yield self._tail
            return
        parts = split_markdown(self._initial)
        if len(parts) == 1 and self._eager:
            yield Segment(parts, build=True, joined=False)  # a short reply: at once
        else:
            yield from self._placeholders(parts, joined=False)

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
    def source(self) -> str:
        """The Markdown drawn so far (placeholders count with their text), neutralised."""
        return "".join(segment.text for segment in self.segments)

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
                await self.mount_all(self._placeholders(split_markdown(text), joined=False))
        self._tail = None
        self._finished = []
        await self.build_visible()
        await self.release_far()

    async def _draw(self, tail_text: str) -> None:
        finished, self._finished = self._finished, []
        new: list[Segment] = []
        if finished:
            tail, self._tail = self._tail, None
            later = finished
            if tail is not None:
                first, later = finished[0], finished[1:]
                rows_after = estimate_rows("".join(later) + tail_text, self._width())
                await self._freeze(tail, first, keep=rows_after < self._viewport_rows())
            if later:
                # Text that streamed past faster than it could be drawn: one placeholder.
                new.append(Segment(later, joined=bool(self.children), width=self._width()))
        if self._tail is None:
            self._tail = Segment([""], build=True, joined=bool(self.children or new))
            new.append(self._tail)
        if new:
            await self.mount_all(new)
        tail = self._tail
        delta = tail_text[len(tail.text) :]
        if delta and tail.markdown is not None:
            if self._stream is None:
                self._stream = Markdown.get_stream(tail.markdown)
            tail.text = tail_text
            tail.parts = [tail_text]
            await self._stream.write(delta)

    async def _freeze(self, segment: Segment, text: str, *, keep: bool) -> None:
        """The segment is finished: complete it if it stays in view, else release it."""
        rest = text[len(segment.text) :]
        segment.text = text
        segment.parts = [text]
        if keep and segment.markdown is not None:
            if rest:
                if self._stream is None:
                    self._stream = Markdown.get_stream(segment.markdown)
                await self._stream.write(rest)
            await self._stop_stream()
            if segment.markdown.source != text:
                await segment.markdown.update(text)
            segment.join()
        else:
            await self._stop_stream()
            await segment.release(estimate_rows(text, self._width()))

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
            segments = self.segments
            if position > len(segments):
                break
            segment = segments[-position]
            if segment.grouped:
                await segment.split()
                continue
            rows -= segment.size.height or estimate_rows(segment.text, width)
            position += 1
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

    def _width(self) -> int:
        if self.size.width:
            return self.size.width
        return max(self.app.size.width - 30, 20) if self.is_attached else 80

    def _viewport_rows(self) -> int:
        scroller = next((n for n in self.ancestors if isinstance(n, ScrollableContainer)), None)
        if scroller is not None and scroller.size.height:
            return scroller.size.height
        return self.app.size.height if self.is_attached else 24


__all__ = ["FRAME_S", "ReplyBody", "ReplyMarkdown", "Segment", "prepare_lexers"]
