"""Markdown cut into segments at safe block boundaries, and their height estimated.

Pure text work, no widgets: :class:`tui.widgets.reply.ReplyBody` draws a reply as
segments of about :data:`SEGMENT_CHARS` characters, cut where a new block starts, so
that drawing it costs what the screen shows, not the reply's length.

A code block is one block, but a very long one (a whole file) would be one Markdown
widget whose highlighting, parsing, memory and layout grow with its length. Once a code
block opened at the start of a line holds :data:`FENCE_LINES` lines (or
:data:`FENCE_CHARS` characters), it is cut off the text before it and into parts of
that size, each a :class:`Part`, up to and with its closing line: the reply draws those
parts as one line-by-line view (:class:`tui.widgets.code.CodeBlock`), not as Markdown.
"""

from __future__ import annotations

import re

SEGMENT_CHARS = 600
"""A segment ends at the first safe boundary after this many characters."""

FENCE_LINES = 150
"""A code block of at least this many lines is cut in parts of this many lines..."""
FENCE_CHARS = 6_000
"""...or of this many characters, if that comes first."""

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_CONTINUES = re.compile(r"\s|[-+*](\s|$)|\d{1,9}[.)](\s|$)")
"""Lines that may continue what came before a blank line: indented text, list items."""
_DECIDE = 12
"""Characters of a line that settle whether it may continue the block before it."""


class Part(str):
    """A part of a long code block; the text is exactly the reply's.

    The first part of a block starts with its opening line (``continued`` is false);
    the last one (``continues`` is false) ends with its closing line, if it has one.
    """

    continued: bool
    continues: bool

    def __new__(cls, text: str, *, continued: bool, continues: bool) -> Part:
        part = super().__new__(cls, text)
        part.continued = continued
        part.continues = continues
        return part


def is_code(part: str) -> bool:
    """Whether ``part`` is a part of a long code block (else it is Markdown)."""
    return isinstance(part, Part)


def fence_of(line: str) -> str | None:
    """The fence (```` ``` ```` or ``~~~``, maybe longer) that ``line`` opens, if any."""
    match = _FENCE.match(line)
    if match is None:
        return None
    fence = match.group(1)
    if fence[0] == "`" and "`" in line.rstrip("\n")[match.end() :]:
        return None  # an info string with a backtick: inline code, not a fence
    return fence


def closes(fence: str, line: str) -> bool:
    """Whether ``line`` (without its newline) closes a code block opened with ``fence``."""
    return bool(re.fullmatch(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", line))


class Splitter:
    """Cuts Markdown, fed piece by piece, into segments at safe block boundaries.

    A boundary is the start of a line that follows a blank line outside a code fence
    and cannot continue the block before it (not indented, not a list item). A long code
    block is cut off as described in the module's documentation. Segments joined give
    back exactly the text fed in.
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
        self._opened_at: int | None = None
        """Where in ``_lines`` the current code block opened, if it may be cut off."""
        self._body_lines = 0
        """Lines of the current code block in the current segment, and their size."""
        self._body_chars = 0
        self._code = False
        """Whether the current segment is a part of a long code block."""
        self._continued = False
        """...that continues the part before."""
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
        return self._part("".join(self._lines) + (self._line if self._checked else ""))

    def close(self) -> str:
        """The rest of the text: the last segment."""
        rest = self._part("".join(self._lines) + self._line)
        self._lines, self._size, self._line, self._checked = [], 0, "", False
        self._code = self._continued = False
        return rest

    def _part(self, text: str, *, continues: bool = False) -> str:
        if not self._code:
            return text
        return Part(text, continued=self._continued, continues=continues)

    def _cut(self, finished: list[str], *, continues: bool = False) -> None:
        finished.append(self._part("".join(self._lines), continues=continues))
        self._lines, self._size = [], 0
        self._body_lines = self._body_chars = 0
        self._code = self._continued = continues

    def _check(self, finished: list[str]) -> None:
        line = self._line
        if self._checked or not line:
            return
        if self._code and self._fence is None:
            self._cut(finished)  # the long code block closed with the line before
        elif self._fence is not None and (self._code or self._opened_at is not None):
            long = self._body_lines >= FENCE_LINES or self._body_chars >= FENCE_CHARS
            if long and not self._cut_code(line, finished):
                return  # the line may still close the block: wait for more of it
        elif self._after_blank and self._fence is None and self._size >= self.target:
            if len(line) < _DECIDE and not line.endswith("\n"):
                return  # "1" may become "1. item": wait for more of the line
            if not _CONTINUES.match(line):
                self._cut(finished)
        self._checked = True

    def _cut_code(self, line: str, finished: list[str]) -> bool:
        """A long code block: cut a part before ``line``; False: undecided yet."""
        assert self._fence is not None
        if not line.strip(f" \t\n{self._fence[0]}"):  # it may close the block
            if not line.endswith("\n"):
                return False
            if closes(self._fence, line.rstrip("\n")):
                return True  # the closing line ends the last part
        if not self._code and self._opened_at is not None:
            # The block turns out long: the text before it is a segment of its own.
            before, self._lines = self._lines[: self._opened_at], self._lines[self._opened_at :]
            if before:
                finished.append("".join(before))
            self._code, self._continued = True, False
        self._cut(finished, continues=True)
        return True

    def _end_line(self) -> None:
        line = self._line
        stripped = line.rstrip("\n")
        if self._fence is None:
            self._fence = fence_of(stripped)
            # Only a block opened at the start of a line is cut off: the text before it
            # and after it are then whole Markdown blocks (no list or quote around it).
            opens_here = self._fence is not None and not line.startswith(" ")
            self._opened_at = len(self._lines) if opens_here else None
            self._body_lines = self._body_chars = 0
        elif closes(self._fence, stripped):
            self._fence = None
            self._opened_at = None
        else:
            self._body_lines += 1
            self._body_chars += len(line)
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


Shape = tuple[int, tuple[int, ...]]
"""What :func:`estimate_rows` needs of a text: the rows it takes at any width, and the
lengths of its lines that wrap (a part of a code block has none: it never wraps)."""


def shape(text: str) -> Shape:
    """The :data:`Shape` of Markdown ``text`` (one pass over it)."""
    rows = 1
    wrapping: list[int] = []
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match and (fence is None or line.strip().startswith(fence)):
            fence = None if fence is not None else match.group(1)[:3]
            rows += 2
        elif fence is not None or not line.strip():
            rows += 1
        else:
            wrapping.append(len(line))
    return rows, tuple(wrapping)


def rows_at(text_shape: Shape, width: int) -> int:
    """About how many rows a text of this shape takes at ``width`` columns."""
    columns = max(width, 10) - 4
    fixed, wrapping = text_shape
    return fixed + sum(-(-length // columns) for length in wrapping)


def estimate_rows(text: str, width: int) -> int:
    """About how many rows Markdown ``text`` takes at ``width`` columns (before it is built)."""
    return rows_at(shape(text), width)


__all__ = [
    "FENCE_CHARS",
    "FENCE_LINES",
    "SEGMENT_CHARS",
    "Part",
    "Shape",
    "Splitter",
    "closes",
    "estimate_rows",
    "fence_of",
    "is_code",
    "rows_at",
    "shape",
    "split_markdown",
]
