"""The command line with the local backend, run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def spezichat(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tui", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_ask_streams_from_the_gemma_file(gemma_path: Path) -> None:
    done = spezichat(
        "ask",
        "--backend",
        "local",
        "--model",
        str(gemma_path),
        "--max-tokens",
        "6",
        "The capital of France is",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""  # llama.cpp's log does not leak onto the terminal


def test_ask_before_onboarding_uses_the_offline_starter() -> None:
    # A fresh config directory and no backend named: the bundled Gemma model answers.
    done = spezichat("ask", "--max-tokens", "4", "The capital of France is")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Hello from the **spezichat** mock model" not in done.stdout


def test_ask_uses_the_local_settings(gemma_path: Path) -> None:
    settings = Settings()
    settings.local.n_ctx = 65536  # more than the model was trained on
    settings.save()
    done = spezichat("ask", "--backend", "local", "--model", str(gemma_path), "hi")
    assert done.returncode == 1
    assert "error: The configured context size does not fit the model." in done.stderr
    assert "32768" in done.stderr and "fix:" in done.stderr


def test_ask_with_a_missing_file(tmp_path: Path) -> None:
    done = spezichat("ask", "--backend", "local", "--model", str(tmp_path / "no.gguf"), "hi")
    assert done.returncode == 1 and done.stdout == ""
    assert "error: Model file not found." in done.stderr and "no.gguf" in done.stderr


def test_models_lists_catalog_and_downloads() -> None:
    done = spezichat("models", "--backend", "local", "--long")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gemma3-270m-starter\t") and "bundled" in lines[0]
    assert any(line.startswith("qwen2.5-1.5b\t") and "not downloaded" in line for line in lines)
    plain = spezichat("models", "--backend", "local").stdout.splitlines()
    assert "llama3.2-3b" in plain and "\t" not in "".join(plain)
