"""The settings screen: system prompt, sampling parameters, model and theme."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from backends.untrusted import one_line
from tui import keymap
from tui.settings import Settings, config_path

if TYPE_CHECKING:
    from tui.app import SpeziChatApp


class FieldError(ValueError):
    """A value the user typed cannot be used; the message says why."""


def parse_optional_float(text: str, name: str, low: float, high: float) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FieldError(f"{name} must be a number, like {high / 2:g}.") from None
    if not low <= value <= high:
        raise FieldError(f"{name} must be between {low:g} and {high:g}; it is {value:g}.")
    return value


def parse_optional_int(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise FieldError(f"{name} must be a whole number, like 1024.") from None
    if value < 1:
        raise FieldError(f"{name} must be at least 1; it is {value}.")
    return value


def _text(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class SettingsScreen(ModalScreen[bool]):
    """Edits the settings of new replies; Ctrl+S saves, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("dialog.close", "settings.save")

    def __init__(self, settings: Settings) -> None:
        super().__init__(classes="dialog-screen")
        self.settings = settings
        self._original_theme = settings.ui.theme

    @property
    def chat_app(self) -> SpeziChatApp:
        return cast("SpeziChatApp", self.app)

    def compose(self) -> ComposeResult:
        general = self.settings.general
        themes = sorted(self.app.available_themes)
        with Vertical(classes="dialog wide", id="settings"):
            yield Static("Settings", classes="dialog-title")
            with VerticalScroll(id="settings-form"):
                yield Label("System prompt (starts every new conversation)")
                yield TextArea(general.system_prompt, id="system-prompt", soft_wrap=True)
                with Horizontal(classes="fields"):
                    with Vertical():
                        yield Label("Temperature (0-2)")
                        yield Input(
                            _text(general.temperature), placeholder="default", id="temperature"
                        )
                    with Vertical():
                        yield Label("top_p (0-1)")
                        yield Input(_text(general.top_p), placeholder="default", id="top-p")
                    with Vertical():
                        yield Label("Max tokens")
                        yield Input(
                            _text(general.max_tokens), placeholder="default", id="max-tokens"
                        )
                yield Label(Content(f"Model ({one_line(general.backend)})"))
                with Horizontal(classes="fields"):
                    # An Input draws its value as it is: no control characters in it.
                    yield Input(one_line(general.model), id="model")
                    yield Button("Choose… (F3)", id="choose-model", compact=True)
                yield Label("Theme")
                yield Select(
                    [(name, name) for name in themes],
                    value=self.app.theme if self.app.theme in themes else Select.BLANK,
                    allow_blank=False,
                    id="theme",
                )
            yield Static("", id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (Ctrl+S)", id="save", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#system-prompt", TextArea).focus()

    def key_f3(self) -> None:
        self._choose_model()

    @on(Button.Pressed, "#choose-model")
    def _choose_model(self) -> None:
        from tui.screens.models import ModelPicker

        def chosen(model: str | None) -> None:
            if model:
                self.query_one("#model", Input).value = one_line(model)

        self.app.push_screen(ModelPicker(self.settings), chosen)

    @on(Select.Changed, "#theme")
    def _preview_theme(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.app.theme = event.value

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        general = self.settings.general
        try:
            temperature = parse_optional_float(
                self.query_one("#temperature", Input).value, "Temperature", 0, 2
            )
            top_p = parse_optional_float(self.query_one("#top-p", Input).value, "top_p", 0, 1)
            max_tokens = parse_optional_int(
                self.query_one("#max-tokens", Input).value, "Max tokens"
            )
            model = self.query_one("#model", Input).value.strip()
            if not model:
                raise FieldError("Model must not be empty: type a model id or press F3.")
        except FieldError as error:
            self.query_one("#settings-error", Static).update(Content(f"⚠ {error}"))
            return
        general.system_prompt = self.query_one("#system-prompt", TextArea).text
        general.temperature = temperature
        general.top_p = top_p
        general.max_tokens = max_tokens
        general.model = model
        self.settings.ui.theme = self.app.theme
        if self.chat_app.save_settings():  # a failure says so itself
            self.notify(
                f"Settings saved to {one_line(str(config_path()))}",
                title="Settings",
                timeout=4,
                markup=False,
            )
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_close(self) -> None:
        if (
            self.app.theme != self._original_theme
            and self._original_theme in self.app.available_themes
        ):
            self.app.theme = self._original_theme
        self.dismiss(False)
