"""``spezichat`` (the app) without a terminal exits 2 with a three-line error.

From cron, ``echo hi | spezichat`` or ``spezichat > out.txt`` the app used to run
forever: no keys can arrive from a pipe, and there is no screen to draw on in a file, so
nothing ever ends it. It needs stdin, stdout and stderr (where Textual draws) to be a
terminal; in pipes and scripts ``spezichat ask`` is the tool.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from tests.support.terminal import ENTRY, LIMIT_S, ROOT, terminal

MESSAGE = "error: spezichat needs a terminal; use `spezichat ask` in pipes."


def _three_lines(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert len(lines) == 3, stderr
    assert lines[0] == MESSAGE
    assert lines[1].startswith("  why: ") and lines[2].startswith("  fix: ")
    assert "spezichat ask" in lines[2]
    return lines


def test_without_any_terminal_as_from_cron_it_exits_2_and_says_why() -> None:
    try:
        result = subprocess.run(
            ENTRY,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"spezichat never ended; it wrote: {expired.stderr!r:.300}") from None
    assert result.returncode == 2
    assert result.stdout == ""  # no escape codes
    why = _three_lines(result.stderr)[1]
    assert "standard input" in why.lower() and "standard output" in why


def test_with_keys_from_a_pipe_it_exits_2_and_says_so_on_the_terminal() -> None:
    with terminal(stdin=subprocess.PIPE) as term:
        keys = term.process.stdin
        assert keys is not None
        with contextlib.suppress(BrokenPipeError), keys:  # it may have ended already
            keys.write(b"hi\n")  # echo hi | spezichat
        code = term.wait_exit()
        shown = term.output.decode()
    assert code == 2
    assert "\x1b[" not in shown  # the app never started: no screen was drawn
    why = _three_lines(shown.replace("\r\n", "\n"))[1]
    assert "standard input" in why.lower() and "standard output" not in why


def test_with_its_output_to_a_file_it_exits_2_and_writes_nothing_there(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("wb") as file, terminal(stdout=file) as term:
        code = term.wait_exit()
        shown = term.output.decode()
    assert code == 2
    assert out.read_bytes() == b""
    assert "\x1b[" not in shown
    why = _three_lines(shown.replace("\r\n", "\n"))[1]
    assert "standard output" in why.lower() and "standard input" not in why.lower()
