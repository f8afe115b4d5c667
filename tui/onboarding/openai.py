"""Onboarding branch "OpenAI": the API key (checked with a real request), then the model."""

from __future__ import annotations

import os
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Input, OptionList, Static

from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui.advice import advice_in
from tui.onboarding.flow import Branch, OnboardingStep, StatusLine, branch_of
from tui.screens.models import is_chat_model, model_option, order_models

MODELS = "openai.models"
"""State key: the model ids the key can use, fetched while checking the key."""
KEY_ENV = "OPENAI_API_KEY"


def _base_url(step: OnboardingStep) -> str:
    from backends.openai.platform import resolve_base_url

    try:
        return resolve_base_url(step.state.settings.openai.base_url)
    except LLMError:
        return step.state.settings.openai.base_url


def _retry_advice(step: OnboardingStep, error: LLMError) -> str:
    """What to do on the key step: correct the key only when the key is what failed."""
    from backends.errors import InvalidSecretError
    from backends.openai.errors import InvalidAPIKeyError, MissingAPIKeyError

    if isinstance(error, InvalidAPIKeyError):
        return (
            "Check the key at https://platform.openai.com/api-keys, then correct it above "
            "and press Enter to try again."
        )
    if isinstance(error, (InvalidSecretError, MissingAPIKeyError)):
        return f"{error.suggestion}\nCorrect the key above and press Enter to try again."
    return f"{advice_in(step.app, error)}\nPress Enter to try again."


class ApiKeyStep(OnboardingStep):
    """Masked key entry; the key is tried against the API before it is stored."""

    TITLE = "OpenAI API key"
    INTRO = (
        "Paste your OpenAI API key. You can create and inspect keys in the API keys "
        "section of your OpenAI account: https://platform.openai.com/api-keys"
    )
    checking: ClassVar[str] = "Checking the key with {url} …"

    def compose_step(self) -> ComposeResult:
        yield Input(placeholder="sk-…", password=True, id="api-key")
        yield StatusLine(id="key-status")  # next to the field it is about
        hint = (
            f"The key is sent only to {_base_url(self)} and stored on this computer "
            "(system keyring, or a file only you can read)."
        )
        if os.environ.get(KEY_ENV, "").strip():  # one hint: the card fits 80x24
            hint += f"\n{KEY_ENV} is set: leave the field empty to use it."
        yield Static(Content(hint), classes="onboarding-hint")
        yield Button("Check key and continue", id="check", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#api-key", Input).focus()

    @on(Input.Submitted, "#api-key")
    @on(Button.Pressed, "#check")
    def submit(self) -> None:
        from backends.openai.keys import ENV_SOURCE, WHAT
        from backends.secrets import Secret

        field = self.query_one("#api-key", Input)
        typed = bool(field.value.strip())
        if not typed and not os.environ.get(KEY_ENV, "").strip():
            self._show_error(
                "No API key entered.",
                "spezichat needs a key to use OpenAI's models.",
                "Paste your key into the field, then press Enter.",
            )
            return
        try:
            # Checked here, kept as a Secret (masked repr), never a worker argument.
            self._key = Secret.checked(
                field.value if typed else os.environ.get(KEY_ENV, ""),
                what=WHAT,
                source="the API key field" if typed else ENV_SOURCE,
            )
        except LLMError as error:
            self._show_error(error.description, error.reason, _retry_advice(self, error))
            return
        self._set_busy(True)
        self.query_one("#key-status", Static).update(
            Content(self.checking.format(url=_base_url(self)))
        )
        self.check_key(store=typed)

    def _set_busy(self, busy: bool) -> None:
        self.query_one("#api-key", Input).disabled = busy
        self.query_one("#check", Button).disabled = busy
        if not busy:
            self.query_one("#api-key", Input).focus()

    def _show_error(self, description: str, reason: str, suggestion: str) -> None:
        status = self.query_one("#key-status", Static)
        status.update(
            Content.assemble(
                ("⚠ " + printable(description), "bold"),
                printable(f"\n{reason}\n→ {suggestion}"),  # may quote the server
            )
        )
        status.add_class("error")

    @work(exclusive=True, group="onboarding-key")
    async def check_key(self, *, store: bool) -> None:
        from backends.openai.keys import KeyStore
        from backends.openai.platform import OpenAIPlatform
        from backends.secrets import Secret

        key = self._key
        openai = self.state.settings.openai
        try:
            platform = OpenAIPlatform(base_url=openai.base_url, api_key=key, timeout=openai.timeout)
            try:
                models = await platform.list_models()
            finally:
                await platform.aclose()
            where = KeyStore().set(key, source="the API key field") if store else KEY_ENV
        except LLMError as error:
            self._set_busy(False)
            self._show_error(error.description, error.reason, _retry_advice(self, error))
            return
        self.state.values[MODELS] = [model.id for model in models]
        self.state.values["openai.key_location"] = where
        env_key = Secret.of(os.environ.get(KEY_ENV, "").strip())
        if store and env_key is not None and env_key != key:
            self.notify(
                f"{KEY_ENV} is set to another key and is used before the stored one. "
                f"Unset {KEY_ENV} to use the key you just entered.",
                severity="warning",
                timeout=12,
                markup=False,
            )
        self._set_busy(False)
        status = self.query_one("#key-status", Static)
        status.remove_class("error")
        status.update(Content(f"✓ The key works ({len(models)} models available)."))
        self.flow.advance()


class ModelStep(OnboardingStep):
    """The models the key can use, chat models first, with a default highlighted."""

    TITLE = "Choose a model"
    INTRO = (
        "Select the OpenAI model you want to use; your API key must have access to it. "
        "You can switch later with F3 or from the command palette (Ctrl+P)."
    )

    def compose_step(self) -> ComposeResult:
        models = self.state.values.get(MODELS, [])
        ordered, self._default = order_models(models, self.state.settings.general.model)
        if ordered:
            yield OptionList(*(model_option(m) for m in ordered), id="models")
        else:
            yield Static("The server listed no models. Type the id of the model to use:")
            yield Input(placeholder="gpt-4o-mini", id="model-id")

    def on_mount(self) -> None:
        if self.query("#models"):
            options = self.query_one("#models", OptionList)
            options.highlighted = self._default
            options.focus()
        else:
            self.query_one("#model-id", Input).focus()

    @on(OptionList.OptionSelected, "#models")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._use(event.option.id)

    @on(Input.Submitted, "#model-id")
    def typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._use(event.value.strip())

    def _use(self, model: str) -> None:
        if is_chat_model(model):
            self._take(model)
            return
        from tui.screens.dialogs import ConfirmDialog

        def answered(anyway: bool | None) -> None:
            if anyway:
                self._take(model)

        # Chat messages to an embedding, speech or image model fail: ask first.
        self.app.push_screen(
            ConfirmDialog(
                "Not a chat model",
                f"{one_line(model)} looks like an embedding, speech, image or moderation "
                "model: your messages to it would fail. Use it anyway?",
                yes="Use it anyway",
                no="Choose another",
                id="not-chat-model",
            ),
            answered,
        )

    def _take(self, model: str) -> None:
        general = self.state.settings.general
        general.backend = "openai"
        general.model = model
        self.flow.advance()


def branch() -> Branch:
    """This backend's onboarding as registered (label, summary, steps: tui.backends.openai)."""
    from tui.backends import REGISTRY

    return branch_of(REGISTRY["openai"])
