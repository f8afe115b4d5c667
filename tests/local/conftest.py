"""Fixtures of the on-device tests: the fake hub and a Gemma model loaded once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.local.models import ModelStore
from backends.local.platform import LocalPlatform, LocalSchema
from tests.support.hub_server import HubServer


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """A loopback hub; HF_ENDPOINT points at it and no saved token leaks in."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer(token="hf_test_token") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def gemma_schema(path: Path, **overrides: object) -> LocalSchema:
    """A schema for the Gemma test model: short, deterministic replies."""
    values: dict[str, object] = {
        "model": str(path),
        "chat_format": "gemma",
        "n_ctx": 512,
        "max_tokens": 8,
        "temperature": 0.0,
        "seed": 7,
    }
    values.update(overrides)
    return LocalSchema(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gemma_platform(gemma_path: Path) -> Iterator[LocalPlatform]:
    """A platform holding the Gemma model, loaded once for the whole module."""
    platform = LocalPlatform(store=ModelStore(gemma_path.parent / "unused-models"))
    platform.engine(gemma_schema(gemma_path))
    yield platform
    platform.unload_all()
