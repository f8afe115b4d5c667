"""The help screen: every key binding, its id (for remapping) and what it does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from backends.untrusted import one_line
from tui import keymap

INTRO = (
    "Remap any key in config.toml under [ui.keybindings] by its id, for example\n"
    '  "chat.new" = "ctrl+t"\n'
    "Ctrl+P opens the command palette (model switch, settings, export, theme...)."
)


def bindings_table(keymap_override: Mapping[str, str]) -> Table:
    table = Table(expand=True, box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("Keys", no_wrap=True)
    table.add_column("What it does")
    table.add_column("Id", style="dim", no_wrap=True)
    effective = keymap.effective_keys(keymap_override)
    for scope, title in keymap.SCOPES.items():
        rows = [(key, keys) for key, keys in effective if key.scope == scope]
        if not rows:
            continue
        table.add_row(Text(title, style="bold"), "", "")
        for key, keys in rows:
            # Keys may come from config.toml: plain text, never Rich markup.
            shown = Text("  " + one_line(keys.replace(",", " ")))
            table.add_row(shown, Text(key.description), Text(key.id))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists all bindings; Esc or F1 closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *keymap.bindings("dialog.close"),
        ("f1", "close", "Close"),
    ]

    def __init__(self, keymap_override: Mapping[str, str]) -> None:
        super().__init__(classes="dialog-screen")
        self.keymap_override = dict(keymap_override)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="help"):
            yield Static("Key bindings", classes="dialog-title")
            # The intro scrolls with the table: on a small terminal it would leave the
            # table no room at all.
            with VerticalScroll(id="help-table"):
                yield Static(INTRO, classes="dialog-body", markup=False)
                yield Static(bindings_table(self.keymap_override), id="help-bindings")

    def on_mount(self) -> None:
        self.query_one("#help-table").focus()

    def action_close(self) -> None:
        self.dismiss(None)
