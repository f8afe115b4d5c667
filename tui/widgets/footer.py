"""The key hints under the chat: as many as fit the width, whole, the most useful first.

Textual's footer lays its keys out in a row that scrolls sideways when they do not fit:
the keys past the right edge are cut mid-word, and at the edge a character of them shows
beside the command palette's key, which is docked there. :class:`KeyFooter` leaves out
whole keys instead, the least useful first: Help, Stop and Quit always stay; the other
keys are kept in the order the footer lists them (the focused widget's keys, then the
screen's in the order of :data:`tui.keymap.KEYS`), as many as fit.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer

FIRST = ("app.help", "stop", "app.quit")
"""Actions whose keys are kept before any other (while they are shown at all)."""


class KeyFooter(Footer):
    """A compact footer that never overflows: keys that do not fit are left out whole."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    def compose(self) -> ComposeResult:
        yield from fitting(list(super().compose()), self.size.width or self.app.size.width)

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)


def key_width(key: Widget) -> int:
    """Columns a compact footer key takes, with the gap after it (or the palette's bar)."""
    shown = cell_len(str(getattr(key, "key_display", "")))
    description = str(getattr(key, "description", ""))
    if description:
        shown += 1 + cell_len(description)
    return shown + 1


def fitting(keys: Iterable[Widget], width: int) -> list[Widget]:
    """The footer's ``keys`` that fit ``width`` columns, in their order."""
    keys = list(keys)
    palette = [key for key in keys if key.has_class("-command-palette")]
    others = [key for key in keys if not key.has_class("-command-palette")]
    # One column spare: the docked palette key leaves the last column to what is under it.
    room = width - sum(key_width(key) for key in palette) - 1
    if room < 0:
        return []
    ranked = sorted(
        others,
        key=lambda key: (
            FIRST.index(str(getattr(key, "action", "")))
            if getattr(key, "action", "") in FIRST
            else len(FIRST)
        ),
    )
    kept: set[int] = set()
    for key in ranked:
        needed = key_width(key)
        if needed <= room:
            kept.add(id(key))
            room -= needed
    return [key for key in others if id(key) in kept] + palette


__all__ = ["KeyFooter", "fitting"]
