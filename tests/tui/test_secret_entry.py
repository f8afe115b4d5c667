"""Keys and tokens typed or pasted during onboarding (issue #12).

A key with a '…' (copied from a masked display) or a tab used to crash the app, whose
crash report listed local variables: the whole key, several times. Now the field shows
what is wrong with the key, keeps what was typed, and the app runs on; nothing the app
draws or prints on exit contains the key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from textual.widgets import Input, Static

from backends.openai.keys import KeyStore
from tests.fog.test_onboarding import Host, settings_for, type_into
from tests.support.openai_server import OpenAITestServer
from tests.support.terminal import terminal
from tests.tui.helpers import SIZE, wait_until
from tui.app import SpeziChatApp
from tui.onboarding import fog
from tui.onboarding.openai import ApiKeyStep
from tui.onboarding.screens import BackendChoiceStep, WelcomeStep
from tui.settings import Settings, config_dir
from tui.wiring import FOG_TOKEN_FILE

MARK = "Zq7SECRETmark"
BAD_KEYS = {
    "ellipsis": f"sk-proj-{MARK}\u2026tail99",
    "tab": f"sk-proj-{MARK}\ttail99",
}
PROBLEMS = {"ellipsis": "U+2026", "tab": "a tab"}


@pytest.fixture
def fresh_openai(openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)


@pytest.mark.parametrize("kind", BAD_KEYS)
async def test_a_bad_key_in_the_field_is_refused_under_it_and_the_app_runs_on(
    kind: str,
    fresh_openai: None,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, WelcomeStep)
        await pilot.press("enter")
        assert isinstance(app.screen, BackendChoiceStep)
        await pilot.press("enter")
        assert isinstance(app.screen, ApiKeyStep)
        field = app.screen.query_one("#api-key", Input)
        field.insert_text_at_cursor(BAD_KEYS[kind])  # as a paste delivers it
        await pilot.press("enter")
        status = app.screen.query_one("#key-status", Static)
        await wait_until(pilot, lambda: "error" in status.classes, "the key error")
        text = str(status.render())
        assert "the API key field" in text and PROBLEMS[kind] in text and "→" in text
        assert MARK not in text
        assert isinstance(app.screen, ApiKeyStep)
        assert field.value == BAD_KEYS[kind] and not field.disabled  # nothing typed is lost
        assert app.is_running and app.return_code is None
        # Corrected, the same field goes on.
        field.value = "sk-test-key"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ApiKeyStep), "the model step")
    assert [r.bearer for r in openai_server.requests] == ["sk-test-key"]
    stored = KeyStore().get()
    assert stored is not None and stored.value == "sk-test-key"


async def test_a_bad_key_in_the_environment_is_named_when_the_field_is_empty(
    fresh_openai: None,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", BAD_KEYS["ellipsis"])
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "enter")
        assert isinstance(app.screen, ApiKeyStep)
        await pilot.press("enter")
        status = app.screen.query_one("#key-status", Static)
        await wait_until(pilot, lambda: "error" in status.classes, "the key error")
        text = str(status.render())
        assert "OPENAI_API_KEY environment variable" in text and MARK not in text
        assert isinstance(app.screen, ApiKeyStep) and app.is_running
    assert openai_server.requests == []


@pytest.mark.parametrize("kind", BAD_KEYS)
async def test_a_bad_fog_token_in_the_field_is_refused_under_it(kind: str) -> None:
    host = Host(settings_for(f"spezichat-test-{uuid.uuid4().hex[:10]}"))
    async with host.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "enter")
        assert isinstance(host.screen, fog.FogAccessStep)
        token = BAD_KEYS[kind].replace("sk-proj-", "fog-")
        await type_into(pilot, "#fog-token", token)
        await pilot.press("enter")
        status = host.screen.query_one("#fog-access-status", Static)
        await wait_until(pilot, lambda: "error" in status.classes, "the token error")
        text = str(status.render())
        assert "the token field" in text and PROBLEMS[kind] in text and MARK not in text
        assert isinstance(host.screen, fog.FogAccessStep) and host.is_running
        assert host.screen.query_one("#fog-token", Input).value == token
    assert not (config_dir() / FOG_TOKEN_FILE).exists()


def test_the_real_app_on_a_terminal_never_prints_the_key(
    openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pasted into the real app: refused on screen; nothing on exit (no crash report)."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    with terminal() as term:
        term.wait_for(lambda: "Welcome to spezichat" in term.text(), "the welcome")
        term.type("\r")
        term.wait_for(lambda: "Where should your model run" in term.text(), "the choice")
        term.type("\r")
        term.wait_for(lambda: "Paste your OpenAI API key" in term.text(), "the key step")
        term.type("\x1b[200~" + BAD_KEYS["ellipsis"] + "\x1b[201~")
        term.type("\r")
        term.wait_for(lambda: "cannot be used" in term.text(), "the key error")
        term.type("\x11")  # Ctrl+Q
        code = term.wait_exit()
        output = term.text()
    assert code == 0, output[-2000:]
    assert MARK not in output and "Traceback" not in output
    assert openai_server.requests == []
