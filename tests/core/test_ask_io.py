"""``spezichat ask`` and its standard streams (issue #13): a full disk, a closed stdout, a
reader that goes away, input that is not UTF-8, piped text next to a prompt argument, and
``--max-time``.

Every test runs the real command in a child process, against the loopback OpenAI server,
with real files, pipes and a real shell for the redirections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import OpenAITestServer, Reply, openai_server

__all__ = ["openai_server"]  # the fixture used here

REPO = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "tui"]
KEY = "sk-test-key"
ASK = ("ask", "-b", "openai", "-m", "gpt-test")


def environment(server: OpenAITestServer) -> dict[str, str]:
    env = os.environ.copy()
    env["OPENAI_BASE_URL"] = server.base_url
    env["OPENAI_API_KEY"] = KEY
    env["LC_ALL"] = "C.UTF-8"  # a UTF-8 locale, as on any desktop
    return env


def spezichat(
    server: OpenAITestServer,
    *args: str | bytes,
    input: bytes | None = None,
    stdout: Any = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*ENTRY, *args],
        cwd=REPO,
        env=environment(server),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
        start_new_session=True,
    )


def error_lines(stderr: bytes) -> list[str]:
    """The three lines of ``fail()``, after checking nothing else went to stderr."""
    text = stderr.decode()
    assert "Traceback" not in text and "Exception ignored" not in text, text
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert lines[0].startswith("error: ") and "Unknown" not in lines[0], text
    assert lines[1].startswith("  why: "), text
    assert lines[2].startswith("  fix: "), text
    return lines


# stdout -------------------------------------------------------------------------------------
def test_a_full_disk_is_an_error_with_exit_1(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply(text="This reply has nowhere to go."))
    with open("/dev/full", "wb") as full:
        result = spezichat(openai_server, *ASK, "hi", stdout=full)
    assert result.returncode == 1
    what, why, fix = error_lines(result.stderr)
    assert "could not be written to standard output" in what
    assert "No space left on device" in why
    assert "free space" in fix


def test_a_closed_stdout_is_an_error_before_any_request(openai_server: OpenAITestServer) -> None:
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *ENTRY, *ASK, "hi"],
        cwd=REPO,
        env=environment(openai_server),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == 1
    what, why, fix = error_lines(result.stderr)
    assert "Standard output is closed" in what
    assert ">&-" in why
    assert "/dev/null" in fix
    assert openai_server.chat_requests == []  # nothing was asked for a reply with no reader


def test_a_reader_that_goes_away_ends_ask_quietly(openai_server: OpenAITestServer) -> None:
    # More than any pipe buffer holds, so ask is still writing when the reader leaves.
    openai_server.script(Reply(text="x" * 400_000, chunk_size=8192))
    process = subprocess.Popen(
        [*ENTRY, *ASK, "hi"],
        cwd=REPO,
        env=environment(openai_server),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1) == b"x"  # like `head -c1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 0
    assert stderr == b""


def test_a_shell_pipe_into_head_is_quiet(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply(text="y" * 400_000, chunk_size=8192))
    result = subprocess.run(
        ["sh", "-c", '"$@" | head -c1', "sh", *ENTRY, *ASK, "hi"],
        cwd=REPO,
        env=environment(openai_server),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.stdout == b"y"
    assert result.stderr == b""


# stdin --------------------------------------------------------------------------------------
def test_input_that_is_not_utf8_is_refused_naming_the_byte(
    openai_server: OpenAITestServer,
) -> None:
    result = spezichat(openai_server, *ASK, input=b"caf\xe9 au lait\n")
    assert result.returncode == 1
    assert result.stdout == b""
    what, why, fix = error_lines(result.stderr)
    assert "standard input is not UTF-8" in what
    assert "byte 3 (0xE9;" in why and "line 1" in why
    assert "iconv" in fix
    assert openai_server.chat_requests == []


def test_input_that_is_not_utf8_after_a_prompt_argument_is_refused(
    openai_server: OpenAITestServer,
) -> None:
    result = spezichat(openai_server, *ASK, "Summarise this:", input=b"ok\n\xff")
    assert result.returncode == 1
    _, why, _ = error_lines(result.stderr)
    assert "byte 3 (0xFF;" in why and "line 2" in why
    assert openai_server.chat_requests == []


def test_an_argument_that_is_not_utf8_is_refused(openai_server: OpenAITestServer) -> None:
    result = spezichat(openai_server, *ASK, b"caf\xe9")
    assert result.returncode == 1
    what, _, _ = error_lines(result.stderr)
    assert "prompt argument is not UTF-8" in what
    assert openai_server.chat_requests == []


def test_piped_text_follows_the_prompt_argument(openai_server: OpenAITestServer) -> None:
    piped = "Fog nodes run models near you.\nThey are fast.\n"
    result = spezichat(openai_server, *ASK, "Summarise this:", input=piped.encode())
    assert result.returncode == 0, result.stderr
    # Nothing piped (an empty pipe): the words alone; `-`: the prompt is stdin, as before.
    assert spezichat(openai_server, *ASK, "Hello", "there", input=b"").returncode == 0
    assert spezichat(openai_server, *ASK, "-", input="Grüße\n".encode()).returncode == 0
    prompts = [r.body["messages"][-1] for r in openai_server.chat_requests]
    assert prompts == [
        {"role": "user", "content": f"Summarise this:\n\n{piped}"},
        {"role": "user", "content": "Hello there"},
        {"role": "user", "content": "Grüße\n"},
    ]


# --max-time ---------------------------------------------------------------------------------
def test_max_time_ends_a_stalled_reply_keeping_what_arrived(
    openai_server: OpenAITestServer,
) -> None:
    # The role chunk and two pieces of text, then the server goes silent.
    openai_server.script(Reply(text="one two three four", chunk_size=4, stall_after=3))
    result = spezichat(openai_server, *ASK, "--max-time", "0.5", "hi")
    assert result.returncode == 1
    assert result.stdout == b"one two "
    what, why, fix = error_lines(result.stderr)
    assert "--max-time" in what
    assert "0.5 seconds" in why and "the 8 characters that had arrived" in why
    assert "--max-time" in fix


def test_max_time_leaves_a_reply_in_time_alone(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply(text="Quick."))
    result = spezichat(openai_server, *ASK, "--max-time", "60", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Quick."


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_max_time_must_be_a_positive_number(openai_server: OpenAITestServer, value: str) -> None:
    result = spezichat(openai_server, *ASK, "--max-time", value, "hi")
    assert result.returncode == 2
    assert "argument --max-time: expected a number of seconds" in result.stderr.decode()
    assert openai_server.chat_requests == []


def test_with_stderr_closed_an_error_stays_out_of_stdout(openai_server: OpenAITestServer) -> None:
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", *ENTRY, *ASK],
        cwd=REPO,
        env=environment(openai_server),
        input=b"caf\xe9",
        stdout=subprocess.PIPE,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == 1
    assert result.stdout == b""  # the error went nowhere rather than into the data
