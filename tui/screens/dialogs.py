"""Small modal dialogs: yes/no questions, a line of text, a choice from a list.

Their texts may quote untrusted text (a function name and arguments from the model, a
conversation title): drawn as plain ``Content``, control characters neutralised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from backends.context import ToolCall
from backends.untrusted import one_line, printable
from tui import keymap
from tui.widgets.messages import pretty_arguments


class ConfirmDialog(ModalScreen[bool]):
    """A question with Yes and No; Esc answers No."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(
        "dialog.yes", "dialog.no", "dialog.close"
    )

    def __init__(
        self,
        title: str,
        body: str = "",
        *,
        yes: str = "Yes",
        no: str = "No",
        detail: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.detail = detail
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(one_line(self.title_text)), classes="dialog-title")
            if self.body:
                yield Static(Content(printable(self.body)), classes="dialog-body")
            if self.detail:
                with VerticalScroll(classes="dialog-detail"):
                    yield Static(Content(printable(self.detail)))
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes", variant="primary")
                yield Button(f"{self.no_label} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)

    def action_close(self) -> None:
        self.dismiss(False)


TYPE_AHEAD_QUIET = 0.8
"""Seconds without a key press before the approval dialog takes an answer."""

TypeAhead = Callable[[str, str | None], None]
"""Receives keys typed into an approval dialog before it is ready: (key, character)."""


class ToolApprovalDialog(ConfirmDialog):
    """Asks before a function the model requested runs.

    The dialog opens while the user may be typing ahead in the prompt, so a keystroke
    must never answer it by accident (the ``y`` of "okay"). It takes an answer only once
    the keyboard has been quiet for ``quiet`` seconds, counted from the later of its
    opening and the last key typed in the prompt (``last_keystroke``, a
    :func:`time.monotonic` time). Keys that arrive before then start the quiet time again
    and go to ``type_ahead``, which puts them back in the prompt, so nothing typed is
    lost. Mouse clicks on the buttons count at any time: they cannot be typed by accident.
    """

    def __init__(
        self,
        call: ToolCall,
        *,
        last_keystroke: float | None = None,
        type_ahead: TypeAhead | None = None,
        quiet: float = TYPE_AHEAD_QUIET,
    ) -> None:
        super().__init__(
            f"Run the function {call.name}?",
            "The model wants to call this function with these arguments:",
            yes="Run it",
            no="Decline",
            detail=pretty_arguments(call.arguments) or "(no arguments)",
            id="tool-approval",
        )
        self.call = call
        self.quiet = quiet
        self.type_ahead = type_ahead
        now = time.monotonic()
        self._ready_at = max(now, last_keystroke or now) + quiet
        self._ready_timer: Timer | None = None

    @property
    def answerable(self) -> bool:
        """Whether the keyboard has been quiet long enough for a key to answer."""
        return time.monotonic() >= self._ready_at

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(".dialog", Vertical).mount(
            Static("", id="approval-hint", classes="dialog-hint")
        )
        self._arm_later()

    def _arm_later(self) -> None:
        if self._ready_timer is not None:
            self._ready_timer.stop()
        self._show_hint()
        self._ready_timer = self.set_timer(
            max(0.0, self._ready_at - time.monotonic()), self._show_hint
        )

    def _show_hint(self) -> None:
        with contextlib.suppress(NoMatches):
            hint = self.query_one("#approval-hint", Static)
            hint.update(
                Content("y runs it · n or Esc declines")
                if self.answerable
                else Content("Waiting for a pause in typing before taking an answer…")
            )

    def on_key(self, event: events.Key) -> None:
        if self.answerable:
            return
        # Typed while the user was still typing: not an answer. Give it back to the prompt.
        event.stop()
        event.prevent_default()
        self._ready_at = time.monotonic() + self.quiet
        self._arm_later()
        if self.type_ahead is not None:
            self.type_ahead(event.key, event.character if event.is_printable else None)


class TextDialog(ModalScreen[str | None]):
    """Asks for one line of text; Enter accepts, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("dialog.close")

    def __init__(self, title: str, value: str = "", *, placeholder: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(one_line(self.title_text)), classes="dialog-title")
            # The value offered for editing is one line without control characters too.
            yield Input(one_line(self.value), placeholder=self.placeholder, id="text")
            yield Static(Content("Enter to accept · Esc to cancel"), classes="dialog-hint")

    @on(Input.Submitted)
    def accept(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(value)
        else:
            self.notify("Type something first, or press Esc to cancel.", severity="warning")

    def action_close(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[int | None]):
    """Pick one entry of a list; returns its index."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("dialog.close")

    def __init__(self, title: str, choices: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(one_line(self.title_text)), classes="dialog-title")
            yield OptionList(
                *(
                    Option(Content(one_line(choice)), id=str(i))
                    for i, choice in enumerate(self.choices)
                ),
                id="choices",
            )

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_close(self) -> None:
        self.dismiss(None)
