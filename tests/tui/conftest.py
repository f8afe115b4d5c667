"""Fixtures for the app's pilot tests: a real store, real settings, the loopback server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.runner import Runner
from tests.support.openai_server import OpenAITestServer, openai_server
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store

__all__ = ["openai_server"]

KEY = "sk-test-key"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "history.db") as store:
        yield store


@pytest.fixture
def mock_settings() -> Settings:
    settings = Settings()
    settings.general.backend = "mock"
    settings.general.model = "mock"
    return settings


@pytest.fixture
def openai_settings(
    openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    """Settings for the OpenAI backend aimed at the loopback server, key in the env."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = "gpt-test"
    settings.ui.export_dir = str(tmp_path / "exports")
    return settings


@pytest.fixture
def make_app(store: Store) -> Callable[..., SpeziChatApp]:
    """Build the app the way ``spezichat`` does: settings, store and runner handed in."""

    def make(settings: Settings, **kwargs: Any) -> SpeziChatApp:
        return SpeziChatApp(settings=settings, store=store, runner=Runner(), **kwargs)

    return make
