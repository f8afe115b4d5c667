"""The real `spezichat` command, run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends import __version__
from backends.mock import DEFAULT_REPLY
from tests.support.processes import default_sigint

ENTRY = [sys.executable, "-m", "tui"]


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"spezichat {__version__}"


def test_help_lists_ask() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    assert "ask" in result.stdout


def test_ask_mock_from_stdin_streams_the_reply_exactly() -> None:
    result = run(["ask", "--backend", "mock"], stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == DEFAULT_REPLY
    assert result.stderr == ""


def test_ask_prompt_argument_and_dash() -> None:
    assert run(["ask", "--backend", "mock", "hello", "there"]).stdout == DEFAULT_REPLY
    assert run(["ask", "--backend", "mock", "-"], stdin="from stdin").returncode == 0


def test_bad_option_is_a_usage_error() -> None:
    result = run(["ask", "--no-such-option"])
    assert result.returncode == 2
    assert result.stderr.startswith("usage: spezichat")
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_empty_prompt_is_a_usage_error() -> None:
    result = run(["ask", "--backend", "mock"], stdin="   \n")
    assert result.returncode == 2
    assert "no prompt given" in result.stderr


def test_unknown_backend_explains_what_to_do(isolated_dirs: Path) -> None:
    # A configured one (on the command line it is a usage error: tests/core/test_audit_cli.py).
    config = isolated_dirs / "xdg_config_home" / "spezichat" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[general]\nbackend = "nonesuch"\n', encoding="utf-8")
    result = run(["ask", "hi"])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: Unknown backend 'nonesuch'."
    assert lines[1].startswith("  why: spezichat knows these backends: ")
    assert "mock" in lines[1]
    assert lines[2].startswith("  fix: ")


def test_broken_config_file_is_reported(isolated_dirs: Path) -> None:
    config = isolated_dirs / "xdg_config_home" / "spezichat" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[general\nbackend = 'mock'\n")
    result = run(["ask", "hi"])
    assert result.returncode == 1
    assert "The settings file is not valid TOML." in result.stderr
    assert str(config) in result.stderr


def test_interrupt_exits_130_and_keeps_printed_output() -> None:
    import signal

    # Signal the child while it is still streaming. On a loaded machine the reply may
    # finish before the signal lands; such an attempt proves nothing and is repeated.
    for _attempt in range(5):
        proc = subprocess.Popen(
            [*ENTRY, "ask", "--backend", "mock", "hi"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        assert proc.stdout is not None
        first = proc.stdout.read(5)  # the reply has started streaming
        if proc.poll() is not None:
            proc.communicate()
            continue
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
        if proc.returncode == 0 and first + rest == DEFAULT_REPLY:
            continue  # the whole reply was out before the signal arrived
        assert proc.returncode == 130, err
        assert first == DEFAULT_REPLY[:5]
        assert DEFAULT_REPLY.startswith(first + rest)  # what was printed stays printed
        assert "Interrupted." in err
        return
    pytest.fail("the reply always finished before the interrupt could be sent")
