"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J starts a new line."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import TextArea

from tui import keymap

NO_WRAP_PASTE = 100_000
"""Pasted text at least this long turns the prompt's line wrapping off until it is sent."""


class PromptInput(TextArea):
    """A text area that posts :class:`PromptInput.Submitted` on Enter.

    The text stays in the box until the screen accepts it (:meth:`take_text`), so a
    message that cannot be sent right now is never lost.
    """

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("prompt.send", "prompt.newline")

    @dataclass
    class Submitted(Message):
        """The user pressed Enter."""

        prompt: PromptInput
        text: str

    def __init__(self, *, id: str | None = None, placeholder: str = "") -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder=placeholder,
        )
        self.last_keystroke: float | None = None
        """When the user last pressed a key here (:func:`time.monotonic`), if ever."""

    def on_key(self, event: events.Key) -> None:
        self.last_keystroke = time.monotonic()

    def type_ahead(self, key: str, character: str | None) -> None:
        """Take a key typed elsewhere (an approval dialog not yet ready) as if typed here.

        Printable characters are inserted and Backspace deletes; other keys are dropped,
        so that Enter typed ahead cannot send a half-written message.
        """
        self.last_keystroke = time.monotonic()
        if character is not None:
            self.insert(character)
        elif key == "backspace":
            self.action_delete_left()

    def on_paste(self, event: events.Paste) -> None:
        # Wrapping a line of a megabyte again after every key press takes most of a
        # second: a prompt holding such a line scrolls sideways instead.
        if len(event.text) >= NO_WRAP_PASTE:
            self.soft_wrap = False

    # Enter and Ctrl+J are priority bindings: the app runs them as soon as it reads the
    # key, while the keys before them still wait in this widget's queue to be inserted.
    # Keys that arrive in one read ("hello" and Enter from tmux send-keys, a paste without
    # bracketed paste, a slow SSH link) would send or break the line before the text is
    # there. Both actions therefore queue behind those keys and act on the text as typed
    # so far, in order: a burst that ends in Enter sends its text. A bracketed paste
    # arrives as one Paste event and never sends.
    def action_send(self) -> None:
        self.call_later(self._send)

    def _send(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.call_later(self.insert, "\n")

    def take_text(self) -> str:
        """Clear the box and return what it held."""
        text = self.text
        self.clear()
        self.soft_wrap = True
        return text
