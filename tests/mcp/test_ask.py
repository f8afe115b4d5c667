"""`spezichat ask` with MCP servers: the real command against the loopback OpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.mcp.conftest import BOUND_S, toml_server, wait_ended, write_config
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall

REPO = Path(__file__).resolve().parents[2]
GENERAL = '[general]\nbackend = "openai"\nmodel = "gpt-test"\n\n'


def ask(server: OpenAITestServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env["OPENAI_BASE_URL"] = server.base_url
    env["OPENAI_API_KEY"] = "sk-test-key"
    return subprocess.run(
        [sys.executable, "-m", "tui", "ask", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        start_new_session=True,  # no controlling terminal: nobody can approve
    )


def offered(server: OpenAITestServer, index: int = 0) -> list[str]:
    body = server.chat_requests[index].body
    return [tool["function"]["name"] for tool in body.get("tools", [])]


def test_ask_round_trip_stdio_and_http(
    openai_server: OpenAITestServer, http_mcp: str, pid_file: Path
) -> None:
    write_config(
        GENERAL
        + toml_server("demo", extra=f'env = {{ DEMO_PID_FILE = "{pid_file}" }}')
        + f'[mcp.servers.web]\nurl = "{http_mcp}"\n'
    )
    openai_server.script(
        Reply(
            tool_calls=[
                ScriptedCall("demo__echo", {"text": "from stdio"}),
                ScriptedCall("web__add", {"a": 20, "b": 22}),
            ]
        ),
        Reply(text="Done."),
    )
    result = ask(openai_server, "--approve-tools", "Use the tools")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Done."
    assert {"demo__echo", "web__add"} <= set(offered(openai_server))
    messages = openai_server.chat_requests[1].body["messages"]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    assert results == ["from stdio", "42"]
    assert wait_ended(pid_file) == []  # ask ended the server it started
    assert pid_file.exists()


def test_no_mcp_and_mcp_choose_the_servers(openai_server: OpenAITestServer, pid_file: Path) -> None:
    env = f'env = {{ DEMO_PID_FILE = "{pid_file}" }}'
    write_config(GENERAL + toml_server("one", extra=env) + toml_server("two", extra=env))
    assert ask(openai_server, "--no-mcp", "hi").returncode == 0
    assert offered(openai_server, 0) == []
    assert not pid_file.exists()  # nothing was started
    assert ask(openai_server, "--mcp", "two", "hi").returncode == 0
    second = offered(openai_server, 1)
    assert second and all(name.startswith("two__") for name in second)
    unknown = ask(openai_server, "--mcp", "three", "hi")
    assert unknown.returncode == 2 and "three" in unknown.stderr and "one, two" in unknown.stderr


def test_without_a_terminal_calls_are_refused_unless_the_server_is_trusted(
    openai_server: OpenAITestServer,
) -> None:
    write_config(GENERAL + toml_server("asks") + toml_server("trusted", extra='approve = "always"'))
    openai_server.script(
        Reply(
            tool_calls=[
                ScriptedCall("asks__echo", {"text": "one"}),
                ScriptedCall("trusted__echo", {"text": "two"}),
            ]
        ),
        Reply(text="ok"),
    )
    result = ask(openai_server, "Use the tools")
    assert result.returncode == 0, result.stderr
    messages = openai_server.chat_requests[1].body["messages"]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    assert "declined" in results[0]
    assert results[1] == "two"


def test_a_server_that_fails_is_reported_and_the_reply_goes_on(
    openai_server: OpenAITestServer,
) -> None:
    write_config(GENERAL + toml_server("broken", "--exit-at-start") + toml_server("demo"))
    result = ask(openai_server, "hi")
    assert result.returncode == 0
    assert "An MCP server could not be started." in result.stderr
    assert "fatal: no config for the demo server" in result.stderr
    assert "demo__echo" in offered(openai_server)
    assert not any(name.startswith("broken") for name in offered(openai_server))


def test_mcp_list_prints_states_and_tools(http_mcp: str) -> None:
    write_config(toml_server("demo") + f'[mcp.servers.web]\nurl = "{http_mcp}"\n')
    env = os.environ.copy()
    result = subprocess.run(
        [sys.executable, "-m", "tui", "mcp", "list", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )
    assert result.returncode == 0, result.stderr
    servers = json.loads(result.stdout)
    assert [(s["name"], s["state"]) for s in servers] == [("demo", "ready"), ("web", "ready")]
    names = {tool["name"] for server in servers for tool in server["tools"]}
    assert {"demo__echo", "web__echo"} <= names
    text = subprocess.run(
        [sys.executable, "-m", "tui", "mcp", "list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )
    assert "demo  [ready]" in text.stdout and "\x1b" not in text.stdout
