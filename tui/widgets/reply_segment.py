"""One segment of a reply (see :mod:`tui.widgets.reply`): its Markdown while near the
screen, else a placeholder as tall. Split from ``tui/widgets/reply.py``, which re-exports
:class:`Segment` and :class:`ReplyMarkdown`.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from tui.widgets.code import QuickFence
from tui.widgets.segments import (
    Shape,
    rows_at,
    shape,
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
        shapes: Sequence[Shape] = (),
    ) -> None:
        super().__init__(classes="-joined" if joined else "")
        self.parts = list(parts)
        self.text = "".join(parts)
        """The Markdown source (of the tail while streaming: what was drawn so far)."""
        self.markdown: ReplyMarkdown | None = ReplyMarkdown(self.text) if build else None
        self._width = width
        self._shapes = list(shapes)
        """The shapes of the parts, to estimate them at another width (when needed)."""
        self._part_rows: list[int]
        if part_rows is not None:
            self._part_rows = list(part_rows)
        else:
            self._part_rows = [0] * len(self.parts) if build else self._estimate(width)
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

    def assign(self, text: str) -> str:
        """This segment is ``text`` (one part) now; returns what it adds to the old text."""
        added = text[len(self.text) :]
        self.text = text
        self.parts = [text]
        self._shapes = []
        return added

    def _estimate(self, width: int) -> list[int]:
        """The rows of each part at ``width`` (cheap for parts of code: they never wrap)."""
        if len(self._shapes) != len(self.parts):
            self._shapes = [shape(part) for part in self.parts]
        return [rows_at(part_shape, width) for part_shape in self._shapes]

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
                shapes=self._shapes[start:end] if len(self._shapes) == len(self.parts) else (),
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
            self._part_rows = self._estimate(width)
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
