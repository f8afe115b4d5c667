"""Issue #15, a new user's audit: ``spezichat ask`` and ``spezichat history``.

The real command in a child process, against the loopback OpenAI server, real files and
a real SQLite history: ``ask`` sends the configured sampling (flags override it), an
unknown ``--backend`` is a usage error, a tools file that exits at import is reported;
``history export -o FILE`` writes that file, negative limits are refused, an unknown id
points at the list, and a history without permission or on a full disk says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends.context import Context
from tests.support.openai_server import OpenAITestServer, openai_server
from tui.store import Store, default_path

__all__ = ["openai_server"]  # the fixture used here

REPO = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "tui"]
KEY = "sk-test-key"


def spezichat(
    *args: str, server: OpenAITestServer | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env["LC_ALL"] = "C.UTF-8"
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
        env["OPENAI_API_KEY"] = KEY
    return subprocess.run(
        [*prefix, *ENTRY, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_config(isolated_dirs: Path, text: str) -> None:
    config = isolated_dirs / "xdg_config_home" / "spezichat" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) >= 3, stderr
    assert lines[-3].startswith("error: ") and lines[-2].startswith("  why: "), stderr
    assert lines[-1].startswith("  fix: "), stderr
    return lines[-3:]


def a_conversation() -> str:
    with Store.open_default() as store:
        conversation = store.create_conversation("Fog nodes", "mock", "mock")
        context = Context()
        context.append_user("What is a fog node?")
        context.append_assistant("A server on your local network.", complete=True)
        store.save_context(conversation.id, context)
        return conversation.id


# ask ----------------------------------------------------------------------------------------
def test_ask_sends_the_configured_sampling(
    openai_server: OpenAITestServer, isolated_dirs: Path
) -> None:
    write_config(
        isolated_dirs,
        '[general]\nbackend = "openai"\nmodel = "gpt-test"\n'
        "temperature = 0.3\ntop_p = 0.9\nmax_tokens = 77\n",
    )
    result = spezichat("ask", "Hello?", server=openai_server)
    assert result.returncode == 0, result.stderr
    body = openai_server.chat_requests[-1].body
    assert body["model"] == "gpt-test"
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9
    assert body["max_completion_tokens"] == 77


def test_ask_flags_override_the_configured_sampling(
    openai_server: OpenAITestServer, isolated_dirs: Path
) -> None:
    write_config(
        isolated_dirs,
        '[general]\nbackend = "openai"\nmodel = "gpt-test"\n'
        "temperature = 0.3\ntop_p = 0.9\nmax_tokens = 77\n",
    )
    flags = ("--temperature", "1.1", "--top-p", "0.5", "--max-tokens", "5")
    result = spezichat("ask", *flags, "Hello?", server=openai_server)
    assert result.returncode == 0, result.stderr
    body = openai_server.chat_requests[-1].body
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (1.1, 0.5, 5)


def test_ask_with_an_unknown_backend_is_a_usage_error() -> None:
    result = spezichat("ask", "--backend", "bogus", "hi")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: spezichat ask")
    assert "unknown backend 'bogus'" in result.stderr and "openai" in result.stderr


def test_a_tools_file_that_exits_at_import_is_reported(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    tools = tmp_path / "tools.py"
    tools.write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    result = spezichat(
        "ask", "-b", "openai", "-m", "gpt-test", "--tools", str(tools), "hi", server=openai_server
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    description, why, fix = error_lines(result.stderr)
    assert "tools file" in description and "exit" in description
    assert str(tools) in why and "sys.exit(0)" in why
    assert "__main__" in fix
    assert not openai_server.chat_requests


# history export ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kind"), [("chat.md", "md"), ("notes/chat.json", "json")])
def test_export_output_naming_a_file_writes_that_file(tmp_path: Path, name: str, kind: str) -> None:
    conversation = a_conversation()
    target = tmp_path / name
    result = spezichat("history", "export", conversation[:8], "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert target.is_file(), sorted(str(p) for p in tmp_path.rglob("*"))
    assert result.stdout.strip() == str(target)
    text = target.read_text(encoding="utf-8")
    if kind == "json":
        assert json.loads(text)["conversation"]["id"] == conversation
    else:
        assert text.startswith("# Fog nodes") and "A server on your local network." in text
    assert (target.stat().st_mode & 0o777) == 0o600


def test_export_output_naming_a_folder_still_names_the_file(tmp_path: Path) -> None:
    conversation = a_conversation()
    folder = tmp_path / "exports"
    folder.mkdir()
    result = spezichat("history", "export", conversation, "-o", str(folder), "-f", "json")
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written.parent == folder and written.name.endswith(f"{conversation[:8]}.json")


# history limits and ids -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args", [("list", "-n", "-1"), ("list", "--limit", "0"), ("search", "fog", "-n", "-5")]
)
def test_limits_below_one_are_refused(args: tuple[str, ...]) -> None:
    a_conversation()
    result = spezichat("history", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "at least 1" in result.stderr
    assert result.stdout == ""


def test_show_of_an_unknown_id_points_at_the_list() -> None:
    a_conversation()
    result = spezichat("history", "show", "abcdef12")
    assert result.returncode == 1
    description, _why, fix = error_lines(result.stderr)
    assert "abcdef12" in description
    assert "new" not in fix.lower()
    assert "spezichat history list" in fix


# history files that cannot be used ---------------------------------------------------------------
def without_file_permission_override() -> tuple[str, ...]:
    """A command prefix under which this process's file permissions apply to it."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores file permissions, and setpriv(1) is missing to drop that")
    # Root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH obeys the permission bits.
    return (setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search")


def test_a_history_file_without_permission_says_permissions() -> None:
    a_conversation()
    path = default_path()
    path.chmod(0)
    try:
        result = spezichat("history", "list", prefix=without_file_permission_override())
    finally:
        path.chmod(0o600)
    assert result.returncode == 1, result.stdout
    description, why, fix = error_lines(result.stderr)
    assert "permission" in description.lower()
    assert str(path) in why
    assert "permissions" in fix and str(path) in fix


def small_filesystem_available(tmp_path: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a private namespace here (None when it can)."""
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return "needs Linux and unshare(1)"
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(probe)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


FILL = """
import errno, sys
with open(sys.argv[1], "wb", buffering=0) as out:
    for size in (65536, 4096, 512, 1):
        while True:
            try:
                out.write(bytes(size))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
"""


@pytest.mark.parametrize("history", ["new", "existing"])
def test_listing_on_a_full_disk_does_not_speak_of_saving(tmp_path: Path, history: str) -> None:
    why = small_filesystem_available(tmp_path)
    if why is not None:
        pytest.skip(why)
    disk = tmp_path / "disk"
    disk.mkdir()
    # In a private mount namespace: a 1 MiB disk holding the data folder (with or
    # without a history), filled to the last byte, then `history list`.
    make = (
        '"$1" -c "from tui.store import Store; Store.open_default().close()" && '
        if history == "existing"
        else ""
    )
    script = (
        'mount -t tmpfs -o size=1m tmpfs "$0" && export XDG_DATA_HOME="$0/data" && '
        f'mkdir -p "$0/data" && {make}"$1" -c "$2" "$0/filler" && exec "$1" -m tui history list'
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, str(disk), sys.executable, FILL],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    description, why_line, fix = error_lines(done.stderr)
    assert "history.db" in why_line
    assert "disk is full" in description
    assert "saved" not in description and "saved" not in fix and "on screen" not in fix
    assert "opened" in description
    assert "Free some disk space" in fix
