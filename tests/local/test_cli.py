"""The command line with the local backend, run as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import children, ended
from tui.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def spezichat(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,  # piped stdin would be added to the prompt
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


def test_models_long_says_which_models_load_in_safe_mode() -> None:
    settings = Settings()
    settings.local.cpu_extra_buffers = "off"
    settings.save()
    lines = spezichat("models", "--backend", "local", "--long").stdout.splitlines()
    assert lines and all("safe mode: CPU extra buffers off (configured)" in line for line in lines)
    settings.local.cpu_extra_buffers = "on"
    settings.save()
    forced = spezichat("models", "--backend", "local", "--long").stdout
    assert forced.strip() and "safe mode" not in forced


def test_ask_chat_format_for_a_model_without_a_template(gemma_path: Path, tmp_path: Path) -> None:
    unknown = tmp_path / "mystery-model.gguf"  # not in the catalog: no format known for it
    unknown.symlink_to(gemma_path)
    without = spezichat("ask", "--backend", "local", "--model", str(unknown), "hi")
    assert without.returncode == 1 and "--chat-format" in without.stderr
    done = spezichat(
        "ask",
        *("--backend", "local", "--model", str(unknown), "--chat-format", "transcript"),
        *("--max-tokens", "12", "What is the capital of France?"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and not done.stdout.startswith(" ")
    wrong = spezichat("ask", "--backend", "mock", "--chat-format", "chatml", "hi")
    assert wrong.returncode == 2 and "local backend only" in wrong.stderr


def _streaming_ask(gemma_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``ask`` writing a long reply; returns it once its engine has sent text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "tui", "ask", "--backend", "local", "--model", str(gemma_path)),
            *(
                "--max-tokens",
                "400",
                "--chat-format",
                "gemma",
                "Write a long story about a dragon.",
            ),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = process.stdout.read(1)  # the first bytes of the reply: the engine is running
    assert first, process.stderr.read() if process.stderr else ""
    [engine] = children(process.pid)
    return process, engine


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_no_engine_outlives_ask(gemma_path: Path, sig: signal.Signals) -> None:
    process, engine = _streaming_ask(gemma_path)
    process.send_signal(sig)
    process.wait(10)
    assert ended(engine), f"the engine {engine} still runs after {sig.name} to ask"
    process.communicate()


def test_a_crash_in_ask_exits_1_with_three_lines(gemma_path: Path) -> None:
    process, engine = _streaming_ask(gemma_path)
    os.kill(engine, signal.SIGSEGV)  # after the reply's first bytes reached stdout
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    text = err.decode()
    assert "error: The on-device engine stopped unexpectedly." in text
    assert "SIGSEGV (segmentation fault)" in text and "fix: Send the message again" in text
