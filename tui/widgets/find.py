"""Where in a reply drawn in segments a piece of its text is shown (a search hit, say).

A reply (:class:`tui.widgets.reply.ReplyBody`) is drawn as segments of Markdown and long
code blocks; most segments away from the screen are placeholders without Markdown. To
show character ``offset`` of the reply, :func:`locate` finds the segment or code block
that holds it, builds that segment (splitting a placeholder that stands for several
parts first) and says which row of it shows the character: exact to the Markdown
block, and to the line in a code block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.widget import Widget
from textual.widgets.markdown import MarkdownBlock

from tui.widgets.code import CodeBlock, QuickFence
from tui.widgets.reply import ReplyBody, Segment


async def locate(body: ReplyBody, offset: int) -> tuple[Widget, int] | None:
    """The widget of ``body`` that draws character ``offset`` of its source, and the row
    (from the widget's top) that shows it; ``None`` for an empty reply.

    A long code block in a box scrolls the line into the box.
    """
    while True:
        start = 0
        children = [c for c in body.children if isinstance(c, (Segment, CodeBlock))]
        if not children:
            return None
        child = children[-1]
        for candidate in children:
            if offset < start + len(candidate.text):
                child = candidate
                break
            start += len(candidate.text)
        else:
            start -= len(child.text)
        local = max(0, offset - start)
        if isinstance(child, CodeBlock):
            # The block's first line opens it: code line n is line n + 1 of its text.
            return child, child.show_line(child.text[:local].count("\n") - 1)
        if child.grouped:
            await child.split(part_of(child.parts, local))
            continue  # the placeholder made way for smaller ones: look again
        if not child.built:
            await child.build()
            drawn = asyncio.Event()
            body.call_after_refresh(drawn.set)
            await drawn.wait()
        return child, row_of(child, local)


def part_of(parts: Sequence[str], offset: int) -> int:
    """The index of the part that holds character ``offset`` of the parts joined."""
    for index, part in enumerate(parts):
        offset -= len(part)
        if offset < 0:
            return index
    return len(parts) - 1


def row_of(segment: Segment, offset: int) -> int:
    """About which row (from the top of ``segment``) shows character ``offset`` of it.

    The Markdown block that holds it is found by its source lines; in a paragraph the
    row is counted as one per source line (it may wrap more), in a code block exactly.
    """
    markdown = segment.markdown
    if markdown is None:
        return 0
    line = segment.text[:offset].count("\n")
    for block in markdown.children:
        if not isinstance(block, MarkdownBlock):
            continue
        first, last = block.source_range
        if first <= line < max(last, first + 1):
            fence = isinstance(block, QuickFence)
            inner = block.children[0] if fence and block.children else block
            within = line - first - 1 if fence else line - first  # a fence opens a line
            within = max(0, min(within, inner.content_region.height - 1))
            return inner.content_region.y - segment.region.y + within
    return 0


__all__ = ["locate", "part_of", "row_of"]
