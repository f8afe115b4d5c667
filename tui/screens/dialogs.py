"""Small modal dialogs: yes/no questions, a line of text, a choice from a list."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from backends.context import ToolCall
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
            yield Static(Content(self.title_text), classes="dialog-title")
            if self.body:
                yield Static(Content(self.body), classes="dialog-body")
            if self.detail:
                with VerticalScroll(classes="dialog-detail"):
                    yield Static(Content(self.detail))
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


class ToolApprovalDialog(ConfirmDialog):
    """Asks before a function the model requested runs."""

    def __init__(self, call: ToolCall) -> None:
        super().__init__(
            f"Run the function {call.name}?",
            "The model wants to call this function with these arguments:",
            yes="Run it",
            no="Decline",
            detail=pretty_arguments(call.arguments) or "(no arguments)",
            id="tool-approval",
        )
        self.call = call


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
            yield Static(Content(self.title_text), classes="dialog-title")
            yield Input(self.value, placeholder=self.placeholder, id="text")
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
            yield Static(Content(self.title_text), classes="dialog-title")
            yield OptionList(
                *(Option(Content(choice), id=str(i)) for i, choice in enumerate(self.choices)),
                id="choices",
            )

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_close(self) -> None:
        self.dismiss(None)
