"""Markdown cut into segments at safe block boundaries, and their height estimated.

Pure text work, no widgets: :class:`tui.widgets.reply.ReplyBody` draws a reply as
segments of about :data:`SEGMENT_CHARS` characters, cut where a new block starts, so
that drawing it costs what the screen shows, not the reply's length.
"""

from __future__ import annotations

import re

SEGMENT_CHARS = 600
"""A segment ends at the first safe boundary after this many characters."""

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_CONTINUES = re.compile(r"\s|[-+*](\s|$)|\d{1,9}[.)](\s|$)")
"""Lines that may continue what came before a blank line: indented text, list items."""
_DECIDE = 12
"""Characters of a line that settle whether it may continue the block before it."""


class Splitter:
    """Cuts Markdown, fed piece by piece, into segments at safe block boundaries.

    A boundary is the start of a line that follows a blank line outside a code fence
    and cannot continue the block before it (not indented, not a list item). Segments
    joined give back exactly the text fed in.
    """

    def __init__(self, target: int = SEGMENT_CHARS) -> None:
        self.target = target
        self._lines: list[str] = []
        """Complete lines of the current segment."""
        self._size = 0
        self._line = ""
        """The line being received."""
        self._checked = False
        """Whether the line being received was checked for a boundary."""
        self._fence: str | None = None
        self._after_blank = False
        self.total = 0
        """Characters fed so far."""

    def feed(self, text: str) -> list[str]:
        """Take the next piece; return the segments it finished (usually none)."""
        self.total += len(text)
        finished: list[str] = []
        start = 0
        while start < len(text):
            end = text.find("\n", start)
            if end < 0:
                self._line += text[start:]
                self._check(finished)
                break
            self._line += text[start : end + 1]
            self._check(finished)
            self._end_line()
            start = end + 1
        return finished

    @property
    def tail(self) -> str:
        """The unfinished segment, without a line that may still start the next one."""
        return "".join(self._lines) + (self._line if self._checked else "")

    def close(self) -> str:
        """The rest of the text: the last segment."""
        rest = "".join(self._lines) + self._line
        self._lines, self._size, self._line, self._checked = [], 0, "", False
        return rest

    def _check(self, finished: list[str]) -> None:
        line = self._line
        if self._checked or not line:
            return
        if self._after_blank and self._fence is None and self._size >= self.target:
            if len(line) < _DECIDE and not line.endswith("\n"):
                return  # "1" may become "1. item": wait for more of the line
            if not _CONTINUES.match(line):
                finished.append("".join(self._lines))
                self._lines, self._size = [], 0
        self._checked = True

    def _end_line(self) -> None:
        line = self._line
        stripped = line.rstrip("\n")
        if self._fence is None:
            match = _FENCE.match(stripped)
            if match and not (match.group(1)[0] == "`" and "`" in stripped[match.end() :]):
                self._fence = match.group(1)
        elif re.fullmatch(
            rf" {{0,3}}{re.escape(self._fence[0])}{{{len(self._fence)},}}[ \t]*", stripped
        ):
            self._fence = None
        self._after_blank = self._fence is None and not stripped.strip()
        self._lines.append(line)
        self._size += len(line)
        self._line = ""
        self._checked = False


def split_markdown(text: str, target: int = SEGMENT_CHARS) -> list[str]:
    """``text`` cut into segments (one segment when it is short)."""
    splitter = Splitter(target)
    parts = splitter.feed(text)
    rest = splitter.close()
    return [*parts, rest] if rest or not parts else parts


def estimate_rows(text: str, width: int) -> int:
    """About how many rows Markdown ``text`` takes at ``width`` columns (before it is built)."""
    width = max(width, 10)
    rows = 1
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match and (fence is None or line.strip().startswith(fence)):
            fence = None if fence is not None else match.group(1)[:3]
            rows += 2
        elif fence is not None or not line.strip():
            rows += 1
        else:
            rows += -(-len(line) // (width - 4))
    return rows


__all__ = ["SEGMENT_CHARS", "Splitter", "estimate_rows", "split_markdown"]
