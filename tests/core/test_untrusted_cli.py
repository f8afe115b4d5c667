"""Untrusted text in the command line (issue #12): control sequences from servers, models,
stored conversations and mDNS never reach a terminal; pipes and JSON keep the exact text.

The commands run for real in child processes, against the loopback OpenAI server, a real
SQLite history and real mDNS on 127.0.0.1. "A terminal" is a real pseudo-terminal in raw
mode (no line discipline), so the bytes read from it are exactly the bytes written.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.context import Context
from tests.fog.conftest import NodeProcess, node_processes, service_name
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, openai_server
from tui.settings import Settings
from tui.store import Store

__all__ = ["node_processes", "openai_server", "service_name"]  # fixtures used here

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-key"

# What a hostile server sends: window title, clipboard write, clear screen, a request
# that makes the terminal type into the app, a C1 CSI, and Rich markup.
TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
CLEAR = "\x1b[2J"
REPORT = "\x1b[6n"
C1_CSI = "\x9b31m"
HOSTILE = f"Hi {TITLE}{CLIPBOARD}{CLEAR}{REPORT}{C1_CSI} [/x] [bold]done[/bold]\r\nbye"
NEUTRAL = "Hi ␛]0;pwned␇␛]52;c;cm0gLXJmIH4=␇␛[2J␛[6n\ufffd31m [/x] [bold]done[/bold]\nbye"

WEATHER_TOOLS = '''
from backends import llm_function


@llm_function
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: Name of the city.
    """
    return f"{city}: 21 degrees"
'''


def assert_clean(data: bytes) -> str:
    """``data`` decoded; fails if it holds ESC, BEL, CR or any other control byte or C1."""
    text = data.decode("utf-8")
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0]
    assert not bad, f"control characters reached the terminal: {bad!r} in {text!r}"
    return text


def env_for(server: OpenAITestServer | None = None, **extra: str) -> dict[str, str]:
    env = os.environ.copy()  # carries the isolated XDG directories of the test
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
        env["OPENAI_API_KEY"] = KEY
    env.update(extra)
    return env


class Terminal:
    """A pseudo-terminal in raw mode; collects every byte the child writes to it."""

    def __init__(self) -> None:
        self.leader, self.follower = pty.openpty()
        tty.setraw(self.follower)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # EIO: every writer has closed the follower
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def started(self) -> None:
        """The child has its copy of the follower: close ours, start reading."""
        os.close(self.follower)
        self._reader.start()

    def output(self) -> bytes:
        self._reader.join(30)
        assert not self._reader.is_alive()
        os.close(self.leader)
        return b"".join(self._chunks)


def run_cli(
    *args: str,
    env: dict[str, str],
    stdout_tty: bool = False,
    stderr_tty: bool = False,
    typed: bytes | None = None,
) -> tuple[int, bytes, bytes]:
    """Run ``spezichat ARGS``; returns (exit code, stdout bytes, stderr bytes).

    ``stdout_tty``/``stderr_tty`` give that stream a terminal of its own (else a pipe);
    ``typed`` is typed ahead on a terminal that is stdin.
    """
    terminals: dict[str, Terminal] = {}
    streams: dict[str, Any] = {"stdin": subprocess.DEVNULL}
    for name, wanted in (("stdout", stdout_tty), ("stderr", stderr_tty), ("stdin", typed)):
        if wanted:
            terminals[name] = Terminal()
            streams[name] = terminals[name].follower
        else:
            streams.setdefault(name, subprocess.PIPE)
    if typed is not None:
        os.write(terminals["stdin"].leader, typed)
    process = subprocess.Popen([sys.executable, "-m", "tui", *args], cwd=REPO, env=env, **streams)
    for terminal in terminals.values():
        terminal.started()
    piped_out, piped_err = process.communicate(timeout=60)
    out = terminals["stdout"].output() if stdout_tty else piped_out
    err = terminals["stderr"].output() if stderr_tty else piped_err
    if typed is not None:
        terminals["stdin"].output()
    return process.returncode, out, err


ASK = ("ask", "--backend", "openai", "--model", "gpt-test", "hi")


# `ask` ----------------------------------------------------------------------------------
def test_ask_neutralises_the_reply_on_a_terminal_only(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply(text=HOSTILE, chunk_size=2))  # sequences split across chunks
    code, out, err = run_cli(*ASK, env=env_for(openai_server), stdout_tty=True)
    assert code == 0, err
    assert assert_clean(out) == NEUTRAL + "\n"  # the newline a terminal gets at the end
    assert err == b""
    # Into a pipe (or file) the reply keeps its exact bytes: scripts rely on them.
    openai_server.script(Reply(text=HOSTILE, chunk_size=2))
    code, out, err = run_cli(*ASK, env=env_for(openai_server))
    assert code == 0, err
    assert out == HOSTILE.encode()


@pytest.mark.parametrize("stderr_tty", [True, False], ids=["terminal", "pipe"])
def test_server_error_text_is_neutralised_on_stderr(
    openai_server: OpenAITestServer, stderr_tty: bool
) -> None:
    openai_server.script(Reply.api_error(400, f"Bad request {TITLE}{CLIPBOARD} [/x]{REPORT}"))
    code, out, err = run_cli(*ASK, env=env_for(openai_server), stderr_tty=stderr_tty)
    assert code == 1
    assert out == b""
    text = assert_clean(err)
    assert "  why: HTTP 400: Bad request ␛]0;pwned␇␛]52;c;cm0gLXJmIH4=␇ [/x]␛[6n\n" in text


def test_tool_calls_and_the_approval_prompt_are_neutralised(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    tools = tmp_path / "weather.py"
    tools.write_text(WEATHER_TOOLS)
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("get_weather", {"city": f"Oslo{CLEAR}{TITLE}"})]),
        Reply(text=f"Sunny{REPORT}."),
    )
    code, out, err = run_cli(
        *("ask", "-b", "openai", "-m", "gpt-test", "--tools", str(tools), "Oslo?"),
        env=env_for(openai_server),
        stdout_tty=True,
        stderr_tty=True,
        typed=b"y\n",
    )
    assert code == 0, err
    assert assert_clean(out) == "Sunny␛[6n.\n"
    text = assert_clean(err)
    assert 'tool call: get_weather({"city": "Oslo\\u001b[2J\\u001b]0;pwned\\u0007"})' in text
    assert "run it? [y/N]" in text
    assert "result: Oslo␛[2J␛]0;pwned␇: 21 degrees" in text
    # The tool itself got the exact text.
    result = openai_server.chat_requests[1].body["messages"][-1]["content"]
    assert result == f"Oslo{CLEAR}{TITLE}: 21 degrees"


# `models` ---------------------------------------------------------------------------------
IDS = ["qwen2.5[instruct]", f"evil{TITLE}[/x]", "two\nlines"]


def test_model_ids_show_as_typed_and_neutralised_on_a_terminal(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.models = IDS
    code, out, err = run_cli("models", "-b", "openai", env=env_for(openai_server), stdout_tty=True)
    assert code == 0, err
    assert assert_clean(out).splitlines() == [  # sorted
        "evil␛]0;pwned␇[/x]",
        "qwen2.5[instruct]",
        "two lines",
    ]
    code, out, err = run_cli("models", "-b", "openai", env=env_for(openai_server))
    assert code == 0, err
    assert out.decode() == "".join(f"{model_id}\n" for model_id in sorted(IDS))


# `history` ----------------------------------------------------------------------------------
@pytest.fixture
def hostile_conversation() -> str:
    with Store.open_default() as store:
        conversation = store.create_conversation(f"Pancakes {TITLE}", "openai", f"m{CLEAR}")
        context = Context()
        context.append_user("How do I make pancakes?")
        context.append_assistant(f"{REPORT} Flour {CLIPBOARD}and pancakes{C1_CSI}.", complete=True)
        store.save_context(conversation.id, context)
        return conversation.id


def test_history_show_markdown_is_neutralised_and_json_exact(hostile_conversation: str) -> None:
    env = env_for()
    code, out, err = run_cli("history", "show", hostile_conversation[:8], env=env)
    assert code == 0, err
    text = assert_clean(out)
    assert text.startswith("# Pancakes ␛]0;pwned␇\n")
    assert "- Model: m␛[2J\n" in text
    assert "␛[6n Flour ␛]52;c;cm0gLXJmIH4=␇and pancakes\ufffd31m." in text

    code, out, err = run_cli("history", "show", hostile_conversation, "-f", "json", env=env)
    assert code == 0, err
    document = json.loads(out)
    assert document["conversation"]["title"] == f"Pancakes {TITLE}"
    assert document["entries"][-1]["content"] == f"{REPORT} Flour {CLIPBOARD}and pancakes{C1_CSI}."


def test_history_list_and_search_are_neutralised(hostile_conversation: str) -> None:
    env = env_for()
    code, out, err = run_cli("history", "list", env=env, stdout_tty=True)
    assert code == 0, err
    row = assert_clean(out).splitlines()[1]
    assert "openai/m␛[2J" in row and row.endswith("Pancakes ␛]0;pwned␇")

    code, out, err = run_cli("history", "search", "flour", env=env)
    assert code == 0, err
    title, snippet = assert_clean(out).splitlines()
    assert title.endswith("Pancakes ␛]0;pwned␇")
    assert snippet == "    ␛[6n Flour ␛]52;c;cm0gLXJmIH4=␇and pancakes\ufffd31m."

    code, out, err = run_cli("history", "search", "flour", "--json", env=env)
    assert json.loads(out)[0]["snippet"] == f"{REPORT} Flour {CLIPBOARD}and pancakes{C1_CSI}."


def test_history_search_on_a_terminal_prints_only_its_own_bold_marks(
    hostile_conversation: str,
) -> None:
    code, out, err = run_cli("history", "search", "flour", env=env_for(), stdout_tty=True)
    assert code == 0, err
    bold, plain = b"\x1b[1m", b"\x1b[0m"
    assert out.count(bold) == 1 and out.count(plain) == 1
    title, snippet = assert_clean(out.replace(bold, b"").replace(plain, b"")).splitlines()
    assert title.endswith("Pancakes ␛]0;pwned␇")
    assert snippet == "    ␛[6n Flour ␛]52;c;cm0gLXJmIH4=␇and pancakes\ufffd31m."
    assert b"\x1b[1mFlour\x1b[0m" in out


def test_markdown_export_is_neutralised_and_json_export_exact(
    hostile_conversation: str, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    for fmt in ("md", "json"):
        code, _, err = run_cli(
            *("history", "export", hostile_conversation, "-f", fmt, "-o", str(folder)),
            env=env_for(),
        )
        assert code == 0, err
    [markdown] = folder.glob("*.md")
    text = assert_clean(markdown.read_bytes())
    assert text.startswith("# Pancakes ␛]0;pwned␇\n")
    assert "␛[6n Flour ␛]52;c;cm0gLXJmIH4=␇and pancakes\ufffd31m." in text
    [exported] = folder.glob("*.json")
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert document["conversation"]["model"] == f"m{CLEAR}"
    assert document["entries"][-1]["content"] == f"{REPORT} Flour {CLIPBOARD}and pancakes{C1_CSI}."


# `discover` and `fog advertise` ---------------------------------------------------------
@pytest.fixture
def hostile_node(service_name: str, node_processes: list[NodeProcess]) -> Iterator[str]:
    """A plain-HTTP node on loopback advertised with markup and a C1 CSI in its name.

    (zeroconf refuses C0 controls such as ESC in instance names, on both ends; C1 ones
    and Rich markup pass.)
    """
    settings = Settings()
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    settings.save()
    name = f"{service_name} [/x] {C1_CSI}node"
    with OpenAITestServer(api_key=None, models=(f"m[/x]{CLEAR}",)) as server:
        advertiser = NodeProcess(
            [
                *("fog", "advertise", "--port", str(server.port)),
                *("--name", name, "--interface", "127.0.0.1"),
            ]
        )
        node_processes.append(advertiser)
        advertiser.wait_for_line("Press Ctrl+C")
        line = advertiser.wait_for_line("Advertising")
        assert_clean(line.encode())
        assert f"'{service_name} [/x] \ufffd31mnode'" in line
        yield name


def test_discover_shows_a_hostile_node_name_as_typed(hostile_node: str) -> None:
    env = env_for(COLUMNS="250")
    code, out, err = run_cli("discover", "--timeout", "3", env=env, stdout_tty=True)
    assert code == 0, err.decode(errors="replace")
    # Rich styles the table on a terminal (SGR sequences ending in "m"); the hostile
    # sequences are OSC and CSI "J", so none of them hides among these.
    text = assert_clean(re.sub(rb"\x1b\[[0-9;]*m", b"", out))
    assert hostile_node.replace(C1_CSI, "\ufffd31m") in text
    assert "m[/x]␛[2J" in text

    code, out, err = run_cli("discover", "--json", "--timeout", "3", env=env)
    assert code == 0, err
    [node] = json.loads(out)
    assert node["name"] == hostile_node and node["models"] == [f"m[/x]{CLEAR}"]


# `download` -------------------------------------------------------------------------------
def test_download_shows_a_bracketed_file_name_as_typed(tmp_path: Path) -> None:
    from tests.support.hub_server import HubServer

    spec = "acme/Tiny-GGUF:tiny[/x]-Q4[bold].gguf"
    with HubServer(token="hf_test_token") as hub:
        hub.add_file("acme/Tiny-GGUF", "tiny[/x]-Q4[bold].gguf", b"GGUF" * 1000)
        env = env_for(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"))
        code, out, err = run_cli("download", spec, env=env)
        assert code == 0, err.decode(errors="replace")
        assert Path(out.decode().strip()).read_bytes() == b"GGUF" * 1000
        code, out, err = run_cli("download", spec, env=env)
        assert code == 0, err.decode(errors="replace")
        assert f"{spec} is already downloaded." in err.decode()
