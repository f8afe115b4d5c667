"""Choosing a model: ordering (chat models first, a sensible default) and the picker."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui import keymap
from tui.advice import advice_in
from tui.settings import Settings

if TYPE_CHECKING:
    from tui.app import SpeziChatApp

PREFERRED = ("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini", "gpt-4o", "gpt-4.1", "gpt-5")
"""Defaults, best first: capable, fast and inexpensive chat models."""

_NOT_CHAT = re.compile(
    r"embed|whisper|tts|dall-e|image|moderation|transcribe|realtime|audio|search|"
    r"computer-use|davinci|babbage|^ada|rerank|sora",
    re.IGNORECASE,
)
_OPENAI_CHAT = re.compile(r"^(gpt-|chatgpt-|o\d)", re.IGNORECASE)


def is_chat_model(model_id: str) -> bool:
    """A guess from the id: False for embedding, speech, image and moderation models."""
    return not _NOT_CHAT.search(model_id)


def order_models(model_ids: Iterable[str], current: str = "") -> tuple[list[str], int]:
    """Chat models first (OpenAI's newest families before others), then the rest.

    Returns the ordered ids and the index of the default: ``current`` when offered, else
    the first of :data:`PREFERRED` offered, else the first chat model.
    """
    unique = sorted(set(model_ids))
    chat = [m for m in unique if is_chat_model(m)]
    rest = [m for m in unique if not is_chat_model(m)]
    chat.sort(key=lambda m: (0 if _OPENAI_CHAT.match(m) else 1, m))
    ordered = chat + rest
    for wanted in (current, *PREFERRED):
        if wanted and wanted in ordered:
            return ordered, ordered.index(wanted)
    return ordered, 0


def model_option(model_id: str) -> Option:
    """The id as typed (plain text, control characters shown); the option's id is exact."""
    shown = one_line(model_id)
    prompt = (
        Content(shown)
        if is_chat_model(model_id)
        else Content.assemble(shown, ("  (not a chat model)", "dim"))
    )
    return Option(prompt, id=model_id)


async def list_model_ids(platform: Any) -> list[str]:
    """The models a platform offers, when it has ``async list_models()``; else []."""
    lister = getattr(platform, "list_models", None)
    if lister is None:
        return []
    models: Sequence[Any] = await lister()
    return [str(getattr(model, "id", model)) for model in models]


class ModelPicker(ModalScreen[str | None]):
    """The models of the configured backend; type to filter, Enter to choose."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("dialog.close")

    def __init__(self, settings: Settings) -> None:
        super().__init__(classes="dialog-screen")
        self.settings = settings
        self.models: list[str] = []

    @property
    def chat_app(self) -> SpeziChatApp:
        return cast("SpeziChatApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="models"):
            yield Static(
                Content(f"Choose a model ({one_line(self.settings.general.backend)})"),
                classes="dialog-title",
            )
            yield Input(placeholder="filter, or type any model id and press Enter", id="filter")
            yield OptionList(id="model-list")
            yield Static("Loading the model list…", id="model-info", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()
        self.load()

    @work(exclusive=True, group="models")
    async def load(self) -> None:
        info = self.query_one("#model-info", Static)
        try:
            ids = await list_model_ids(self.chat_app.platform())
        except LLMError as error:
            info.update(Content(printable(f"⚠ {error.description} {advice_in(self.app, error)}")))
            return
        if not ids:
            info.update(Content("This backend has no model list: type a model id."))
            return
        self.models, _ = order_models(ids, self.settings.general.model)
        self._show(self.query_one("#filter", Input).value)

    def _show(self, text: str) -> None:
        view = self.query_one("#model-list", OptionList)
        view.clear_options()
        wanted = text.strip().lower()
        shown = [m for m in self.models if wanted in m.lower()]
        view.add_options(model_option(m) for m in shown)
        if shown:
            current = self.settings.general.model
            view.highlighted = shown.index(current) if current in shown else 0
        if self.models:  # the count follows the filter
            total = len(self.models)
            count = f"{len(shown)} of {total} models" if wanted else f"{total} models"
            keys = "↓ to the list · Enter chooses" if shown else "Enter uses the id as typed"
            self.query_one("#model-info", Static).update(Content(f"{count} · {keys} · Esc closes"))

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self._show(event.value)

    @on(Input.Submitted, "#filter")
    def _typed(self, event: Input.Submitted) -> None:
        view = self.query_one("#model-list", OptionList)
        typed = event.value.strip()
        if typed in self.models or (typed and not view.option_count):
            self.dismiss(typed)
        elif view.highlighted is not None:
            self.dismiss(view.get_option_at_index(view.highlighted).id)

    def key_down(self) -> None:
        view = self.query_one("#model-list", OptionList)
        if self.query_one("#filter", Input).has_focus and view.option_count:
            view.focus()

    @on(OptionList.OptionSelected, "#model-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
