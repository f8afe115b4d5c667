"""Onboarding: welcome, backend choice, OpenAI key (checked against the loopback server),
model choice, the chat; the on-device starter; the branch hook."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input, OptionList, Static

from backends.openai.keys import KeyStore
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.conftest import KEY
from tests.tui.helpers import SIZE, chat, replies, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.onboarding.flow import Branch, OnboardingFlow, OnboardingStep
from tui.onboarding.local import StarterModelStep
from tui.onboarding.openai import ApiKeyStep, ModelStep
from tui.onboarding.screens import BackendChoiceStep, WelcomeStep
from tui.screens.chat import ChatScreen
from tui.settings import Settings, config_path


@pytest.fixture
def fresh_openai(openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new user: no config, no key, OPENAI_BASE_URL aimed at the loopback server."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.models = ["text-embedding-3-small", "gpt-test", "gpt-4o-mini", "whisper-1"]


async def _to_key_screen(pilot: Any) -> None:
    assert isinstance(pilot.app.screen, WelcomeStep)
    await pilot.press("enter")
    assert isinstance(pilot.app.screen, BackendChoiceStep)
    options = pilot.app.screen.query_one(OptionList)
    assert options.get_option_at_index(options.highlighted).id == "openai"
    await pilot.press("enter")
    assert isinstance(pilot.app.screen, ApiKeyStep)


async def test_invalid_key_is_refused_inline_and_nothing_is_stored(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp], openai_server: OpenAITestServer
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await _to_key_screen(pilot)
        await type_text(pilot, "sk-wrong-key")
        await pilot.press("enter")
        status = app.screen.query_one("#key-status", Static)
        await wait_until(pilot, lambda: "error" in status.classes, "the key error is shown")
        text = str(status.render())
        assert "API key" in text and "→" in text  # what happened ... and what to do
        assert isinstance(app.screen, ApiKeyStep)
        field = app.screen.query_one("#api-key", Input)
        assert field.value == "sk-wrong-key" and not field.disabled  # nothing typed is lost
        assert field.password
    assert KeyStore().get() is None
    assert not config_path().exists()
    assert openai_server.requests[-1].bearer == "sk-wrong-key"


async def test_valid_key_then_model_then_chat_and_restart_skips_onboarding(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp], openai_server: OpenAITestServer
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await _to_key_screen(pilot)
        # Paste works: the key arrives as one paste event.
        app.screen.query_one("#api-key", Input).insert_text_at_cursor(KEY)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelStep), "the model step")
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["gpt-4o-mini", "gpt-test", "text-embedding-3-small", "whisper-1"]
        assert options.highlighted == 0  # the sensible default
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        openai_server.script(Reply(text="Hi! I am the *test* model.", chunk_size=2))
        await send(pilot, "Hello?")
        assert replies(pilot)[-1].text == "Hi! I am the *test* model."
        assert chat(pilot).status.model == "gpt-test"
    saved = Settings.load()
    assert (saved.general.backend, saved.general.model) == ("openai", "gpt-test")
    stored = KeyStore().get()
    assert stored is not None and stored.value == KEY
    assert stat.S_IMODE(os.stat(KeyStore().path).st_mode) == 0o600
    assert openai_server.chat_requests[-1].bearer == KEY

    again = make_app(Settings.load())
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = chat(pilot)
        assert [type(item).__name__ for item in screen.log_view.items()] == [
            "UserMessage",
            "AssistantMessage",
        ]
        assert replies(pilot)[-1].text == "Hi! I am the *test* model."


async def test_escape_goes_back_one_step(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await _to_key_screen(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, BackendChoiceStep)
        await pilot.press("escape")
        assert isinstance(app.screen, WelcomeStep)
        await pilot.press("escape")  # nothing before the welcome
        assert isinstance(app.screen, WelcomeStep)


async def test_offline_starter_is_reachable_from_the_welcome_screen(
    make_app: Callable[..., SpeziChatApp],
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        options = app.screen.query_one(OptionList)
        local = options.get_option_index("local")
        assert not options.get_option_at_index(local).disabled
        while options.highlighted != local:
            await pilot.press("down")
        await pilot.press("enter")
        assert isinstance(app.screen, StarterModelStep)
        assert "tiny base model" in str(app.screen.query_one("#starter", Static).render())
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
    saved = Settings.load()
    assert (saved.general.backend, saved.general.model) == ("local", "gemma3-270m-starter")


async def test_onboarding_again_keeps_history_and_switches_backend(
    fresh_openai: None,
    make_app: Callable[..., SpeziChatApp],
    mock_settings: Settings,
) -> None:
    mock_settings.save()
    app = make_app(Settings.load(), force_onboarding=True)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, WelcomeStep)
        await _to_key_screen(pilot)
        await type_text(pilot, KEY)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelStep), "the model step")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        assert chat(pilot).status.backend == "openai"
    assert Settings.load().general.model == "gpt-4o-mini"


# The framework on its own: a custom branch plugged in through the hook ----------------


class PickMock(OnboardingStep):
    TITLE = "Mock"

    def on_mount(self) -> None:
        self.state.values["mock.visited"] = True

    def key_enter(self) -> None:
        self.state.settings.general.backend = "mock"
        self.state.settings.general.model = "mock"
        self.flow.advance()


class FlowHost(App[None]):
    def __init__(self, branches: list[Branch]) -> None:
        super().__init__()
        self.branches = branches
        self.finished: list[Settings] = []

    def on_mount(self) -> None:
        OnboardingFlow(self, Settings(), self.finished.append, branches=self.branches).start()


async def test_a_branch_plugs_in_and_an_unavailable_one_is_disabled_with_its_reason(
    tmp_path: Path,
) -> None:
    branches = [
        Branch("nope", "Nope", "Cannot work here.", (PickMock,), unavailable=lambda: "no GPU"),
        Branch("mock", "Mock", "A scripted model.", (PickMock,)),
    ]
    host = FlowHost(branches)
    async with host.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        options = host.screen.query_one(OptionList)
        nope = options.get_option_at_index(0)
        assert nope.disabled and "Not available: no GPU" in str(nope.prompt)
        assert options.highlighted == 1  # the first choice that works
        await pilot.press("enter")
        assert isinstance(host.screen, PickMock)
        await pilot.press("enter")
        await pilot.pause()
    assert len(host.finished) == 1
    assert host.finished[0].general.backend == "mock"
