"""Text that came from outside, made safe to show on a terminal.

Model replies, tool results, server error bodies, model ids, mDNS names and TXT values
and conversation titles are untrusted: a hostile or broken server can put terminal
control sequences in them (``ESC ] 52`` writes the clipboard, ``ESC [ 6 n`` makes the
terminal type into the app). :func:`printable` neutralises every C0 and C1 control
character except newline and tab, drawing C0 ones as their Unicode control pictures
(ESC becomes ``␛``) so that nothing is hidden from the reader. Storage and JSON output
keep the exact text; only what goes to a terminal passes through here.
"""

from __future__ import annotations

CONTROL_PICTURE_BASE = 0x2400  # U+2400 SYMBOL FOR NULL; C0 code n maps to U+2400 + n
DELETE_PICTURE = "\u2421"  # ␡
C1_PICTURE = "\ufffd"  # C1 controls have no pictures of their own

_TABLE: dict[int, str | None] = {code: chr(CONTROL_PICTURE_BASE + code) for code in range(0x20)}
_TABLE.pop(ord("\n"))
_TABLE.pop(ord("\t"))
_TABLE[ord("\r")] = None  # CR would move the cursor back over text already written
_TABLE[0x7F] = DELETE_PICTURE
_TABLE.update({code: C1_PICTURE for code in range(0x80, 0xA0)})

_LINE_TABLE = dict(_TABLE)
_LINE_TABLE[ord("\n")] = " "
_LINE_TABLE[ord("\t")] = " "


def printable(text: str) -> str:
    """``text`` with control characters other than newline and tab neutralised.

    Carriage returns are dropped (so ``\\r\\n`` line ends read as ``\\n``); every other
    C0 control is drawn as its control picture, DEL as ``␡`` and C1 controls as ``�``.
    The mapping works per character, so it can be applied to each streamed piece.
    """
    return text.translate(_TABLE)


def one_line(text: str) -> str:
    """:func:`printable`, with newlines and tabs turned into spaces too (labels, ids)."""
    return text.translate(_LINE_TABLE)
