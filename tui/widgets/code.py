"""Code blocks of replies: highlighted without guessing, and long ones drawn line by line.

:class:`QuickFence` is the code block of the Markdown widget. A long code block (a whole
file pasted by a model: see :mod:`tui.widgets.segments`) would make one Markdown widget
whose parsing, highlighting, memory and layout grow with its length; the reply draws
it as a :class:`CodeBlock` instead: a line-by-line view that looks like a code block,
highlights only the lines on screen (in chunks, a few kept) and keeps nothing else per
line but the line's text. Up to :data:`BOX_LINES` lines it is as tall as its code;
a longer one is a box two thirds of the screen high that scrolls inside (with the
mouse wheel, or the arrow keys once focused) and shows the end of the code at first, as
the conversation shows the end of a reply: the conversation stays short enough to lay
out at every key.

All text here is untrusted: it comes already neutralised (see
:func:`backends.untrusted.printable`) and is drawn as plain text, never as markup.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual
from textual.widget import Widget
from textual.widgets.markdown import Markdown, MarkdownFence

from backends.untrusted import one_line
from tui.widgets.segments import closes, fence_of

if TYPE_CHECKING:
    from markdown_it.token import Token

BOX_LINES = 1_000
"""A code block of more lines than this scrolls inside a box."""

CHUNK_LINES = 64
"""Lines highlighted together when one of them is drawn."""

KEPT_CHUNKS = 8
"""Highlighted chunks kept per block (what scrolled away is highlighted again)..."""

KEPT_LINES = 256
"""...and lines drawn (what the screen shows of it; these depend on the colours around)."""

LABEL_CHARS = 30
"""The longest language name shown above a code block."""


class QuickFence(MarkdownFence):
    """A code block that never makes Pygments search for its language.

    Without a language Textual guesses with Pygments' ``guess_lexer``, which imports
    every lexer the first time (about half a second) and tries them all each time; a
    language Pygments does not know makes it scan the installed packages for plugins
    (0.4 s here). While a reply streams that would happen on every update of the block.
    Such blocks are shown as plain text instead.

    The block's language, as the reply names it, labels the block (its border title).
    """

    def __init__(self, markdown: Markdown, token: Token, code: str) -> None:
        super().__init__(markdown, token, code)
        label_language(self, self.lexer)

    def set_content(self, content: Content) -> None:
        # Called when a streaming update reuses this block for the next version of it.
        super().set_content(content)
        label_language(self, self.lexer)

    @classmethod
    def highlight(cls, code: str, language: str, ansi: bool = False, dark: bool = False) -> Content:
        name = language.split()[0].lower() if language.strip() else ""
        return super().highlight(code, name if name in _known_languages() else "text", ansi, dark)


def label_language(block: Widget, info: str) -> None:
    """Name the language of a code block (its info string's first word) in its top border.

    The name is the model's text: shown as plain text, never as markup.
    """
    words = info.split()
    name = one_line(words[0])[:LABEL_CHARS] if words else ""
    block.set_class(bool(name), "-labelled")
    block.border_title = Content(name) if name else None


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


def _cells(line: str) -> int:
    if "\t" in line:
        line = line.expandtabs(8)
    return len(line) if line.isascii() else cell_len(line)


class CodeBlock(ScrollView):
    """A long code block of a reply, fed its parts (:class:`tui.widgets.segments.Part`).

    Parts are added with :meth:`commit`; while the reply streams, :meth:`set_tail` shows
    the part still arriving. :attr:`text` is exactly the Markdown of the block (opening
    and closing lines included), the lines drawn are the code between them.
    """

    DEFAULT_CSS = """
    CodeBlock {
        width: 1fr;
        height: auto;
        margin: 0 0 1 0;
        padding: 1 2;
        overflow-x: auto;
        overflow-y: hidden;
        scrollbar-size-horizontal: 0;
        color: rgb(210,210,210);
        background: black 10%;
        &:light {
            background: white 30%;
        }
        &.-first {
            margin-top: 1;
        }
        &.-boxed {
            height: 66vh;
            min-height: 8;
            overflow-y: auto;
        }
    }
    CodeBlock:ansi {
        background: transparent;
        padding: 1 0;
    }
    """

    def __init__(self, parts: Sequence[str] = (), *, first: bool = False) -> None:
        """``first``: the block starts the reply (it gets a margin above)."""
        super().__init__(classes="-first" if first else "")
        self.can_focus = False
        self._parts: list[str] = []
        """The parts committed so far (the code's lines are cut from them when drawn)."""
        self._ends: list[int] = []
        """How many lines of code the committed parts hold, up to and with each."""
        self._split: LRUCache[int, list[str]] = LRUCache(KEPT_CHUNKS)
        """Parts cut in lines, by part."""
        self._tail = ""
        self._tail_lines: list[str] = []
        self._fence = "```"
        self.language = ""
        self._width = 0
        """Cells of the widest line."""
        self._chunks: LRUCache[int, list[Content]] = LRUCache(KEPT_CHUNKS)
        """Highlighted lines, by chunk, for the colours of ``_theme``."""
        self._theme: tuple[bool, bool] | None = None
        self._strips: LRUCache[int, Strip] = LRUCache(KEPT_LINES)
        """Drawn lines, by line, in the style ``_style``."""
        self._style: Style | None = None
        for part in parts:
            self.commit(part)

    @property
    def text(self) -> str:
        """The Markdown of the block so far: its parts and the one still arriving."""
        return "".join(self._parts) + self._tail

    @property
    def line_count(self) -> int:
        """Lines of code (without the opening and closing lines)."""
        return self._committed + len(self._tail_lines)

    @property
    def _committed(self) -> int:
        return self._ends[-1] if self._ends else 0

    def code_line(self, index: int) -> str:
        """Line ``index`` of the code, as drawn."""
        if index >= self._committed:
            return self._tail_lines[index - self._committed]
        part = bisect.bisect_right(self._ends, index)
        lines = self._split.get(part)
        if lines is None:
            lines = self._split[part] = self._code_lines(self._parts[part], first=part == 0)
        return lines[index - (self._ends[part - 1] if part else 0)]

    def commit(self, part: str) -> None:
        """Add the next part of the block (the part that was arriving is now in it)."""
        first_changed = self._committed
        lines = self._code_lines(part, first=not self._parts)
        self._parts.append(part)
        self._ends.append(first_changed + len(lines))
        self._tail, self._tail_lines = "", []
        self._changed(first_changed, lines)

    def set_tail(self, text: str) -> None:
        """Show ``text``, the part that is still arriving, after the committed ones."""
        self._tail = text
        self._tail_lines = self._code_lines(text, first=not self._parts)
        self._changed(self._committed, self._tail_lines)

    def _code_lines(self, text: str, *, first: bool) -> list[str]:
        """The lines of code in ``text``; ``first``: it starts with the opening line."""
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the text ends with a newline
        if first and lines:
            opener = lines.pop(0)
            self._fence = fence_of(opener) or self._fence
            self.language = opener.strip().lstrip(self._fence[0])
            label_language(self, self.language)
        if lines and closes(self._fence, lines[-1]):
            lines.pop()  # a closing line only ever ends the last part
        return lines

    def _changed(self, first_changed: int, lines: list[str]) -> None:
        if len(self._chunks):
            for chunk in range(first_changed // CHUNK_LINES, self.line_count // CHUNK_LINES + 1):
                self._chunks.discard(chunk)
        if len(self._strips):
            for index in range(first_changed, self.line_count):
                self._strips.discard(index)
        self._width = max(self._width, max(map(_cells, lines), default=0))
        if self.is_mounted:
            self._resize()

    def on_mount(self) -> None:
        self._resize()

    def _resize(self) -> None:
        following = self.has_class("-boxed") and self.is_vertical_scroll_end
        boxed = self.line_count > BOX_LINES
        if boxed and not self.has_class("-boxed"):
            following = True  # it becomes a box while the reply streams: show its end
        self.set_class(boxed, "-boxed")
        self.can_focus = boxed
        self.virtual_size = Size(self._width, self.line_count)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
        self.refresh()

    def show_line(self, index: int) -> int:
        """Bring line ``index`` of the code into view in the box (if boxed); returns the
        row, from the top of the block, that shows it."""
        index = max(0, min(index, self.line_count - 1))
        top = self.content_region.y - self.region.y  # the label and padding above the code
        if not self.has_class("-boxed"):
            return top + index
        y = max(0, min(index - self.scrollable_content_region.height // 3, self.max_scroll_y))
        self.scroll_to(y=y, animate=False, immediate=True)
        return top + index - y

    def release(self) -> None:
        """Forget the highlighted lines (the block is far from the screen)."""
        self._chunks.clear()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= self.line_count:
            return Strip.blank(width, self.rich_style)
        style = self.visual_style
        if style != self._style:  # other colours around (the reply was selected, say)
            self._style = style
            self._strips.clear()
        strip = self._strips.get(index)
        if strip is None:
            line = self._highlighted(index)
            strip = Visual.to_strips(self, line, _cells(line.plain) or 1, 1, style)[0]
            self._strips[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _highlighted(self, index: int) -> Content:
        theme = (self.app.native_ansi_color, self.app.current_theme.dark)
        if theme != self._theme:
            self._theme = theme
            self._chunks.clear()
        chunk, row = divmod(index, CHUNK_LINES)
        lines = self._chunks.get(chunk)
        if lines is None:
            start = chunk * CHUNK_LINES
            end = min(start + CHUNK_LINES, self.line_count)
            code = "\n".join(self.code_line(i) for i in range(start, end))
            # Unicode's line separators would make more lines than the code has.
            code = code.replace("\u2028", " ").replace("\u2029", " ")
            lines = QuickFence.highlight(code, self.language, *theme).split("\n", allow_blank=True)
            self._chunks[chunk] = lines
        return lines[row] if row < len(lines) else Content("")


__all__ = ["BOX_LINES", "CodeBlock", "QuickFence", "prepare_lexers"]
