"""The real `spezichat` command against the loopback OpenAI server (the issue's Must show)."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall

REPO = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "tui"]
KEY = "sk-test-key"
REPLY = "Grüße! A *fog node* is\na server near you.\n\n- fast\n- private  "

WEATHER_TOOLS = '''
from typing import Literal

from backends import llm_function


@llm_function
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather for a city.

    Args:
        city: Name of the city, for example "Berlin".
        unit: Temperature unit of the answer.
    """
    return f"{city}: 21 degrees {unit}, light wind"
'''


def spezichat(
    server: OpenAITestServer,
    *args: str,
    key: str | None = KEY,
    stdin: Any = subprocess.DEVNULL,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env["OPENAI_BASE_URL"] = server.base_url
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [*ENTRY, *args],
        cwd=REPO,
        env=env,
        stdin=None if input is not None else stdin,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )


def test_ask_prints_the_streamed_reply_exactly(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply(text=REPLY, chunk_size=2))
    result = spezichat(openai_server, "ask", "--backend", "openai", "--model", "gpt-test", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY
    assert result.stderr == ""
    chat = openai_server.chat_requests
    assert len(chat) == 1 and chat[0].body["model"] == "gpt-test"
    assert chat[0].body["messages"][-1] == {"role": "user", "content": "hi"}
    assert chat[0].bearer == KEY


def test_a_wrong_key_exits_1_with_a_message_about_the_key(
    openai_server: OpenAITestServer,
) -> None:
    result = spezichat(
        openai_server, "ask", "-b", "openai", "-m", "gpt-test", "hi", key="sk-wrong-key"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "error: The OpenAI API key is invalid."
    assert lines[1].startswith("  why: The server rejected the API key (HTTP 401).")
    assert "spezichat key set" in lines[2] and "OPENAI_API_KEY" in lines[2]
    assert "sk-wrong-key" not in result.stderr


def test_a_weather_tool_from_a_file_is_called_and_its_result_sent_back(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    tools = tmp_path / "weather.py"
    tools.write_text(WEATHER_TOOLS)
    arguments = {"city": "Berlin", "unit": "celsius"}
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("get_weather", arguments)], arguments_chunk_size=3),
        Reply(text="It is 21 degrees and windy in Berlin."),
    )
    result = spezichat(
        openai_server,
        "ask",
        "-b",
        "openai",
        "-m",
        "gpt-test",
        "--tools",
        str(tools),
        "--approve-tools",
        "Weather in Berlin?",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 21 degrees and windy in Berlin."
    assert 'tool call: get_weather({"city": "Berlin", "unit": "celsius"})' in result.stderr
    assert "result: Berlin: 21 degrees celsius, light wind" in result.stderr
    first, second = openai_server.chat_requests
    tool = first.body["tools"][0]["function"]
    assert tool["name"] == "get_weather"
    assert tool["parameters"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    call = second.body["messages"][-2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == arguments  # from 12 fragments
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "Berlin: 21 degrees celsius, light wind",
    }


def _tool_script(server: OpenAITestServer) -> None:
    server.script(
        Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Oslo"})]),
        Reply(text="OK."),
    )


def test_without_a_terminal_tool_calls_are_refused_and_the_model_told(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    tools = tmp_path / "weather.py"
    tools.write_text(WEATHER_TOOLS)
    _tool_script(openai_server)
    result = spezichat(
        openai_server, "ask", "-b", "openai", "-m", "gpt-test", "--tools", str(tools), "Oslo?"
    )
    assert result.returncode == 0, result.stderr
    assert "refused: there is no terminal to ask on" in result.stderr
    tool_message = openai_server.chat_requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool" and "declined" in tool_message["content"]


def test_a_yes_on_the_terminal_runs_the_tool(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    tools = tmp_path / "weather.py"
    tools.write_text(WEATHER_TOOLS)
    _tool_script(openai_server)
    leader, follower = pty.openpty()
    try:
        os.write(leader, b"y\n")  # typed ahead; the terminal buffers it
        result = spezichat(
            openai_server,
            "ask",
            "-b",
            "openai",
            "-m",
            "gpt-test",
            "--tools",
            str(tools),
            "Oslo?",
            stdin=follower,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 0, result.stderr
    assert "run it? [y/N]" in result.stderr
    tool_message = openai_server.chat_requests[1].body["messages"][-1]
    assert tool_message["content"] == "Oslo: 21 degrees celsius, light wind"


def test_models_lists_the_servers_models(openai_server: OpenAITestServer) -> None:
    openai_server.models = ["gpt-test", "gpt-4o-mini", "o3-mini"]
    result = spezichat(openai_server, "models", "--backend", "openai")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["gpt-4o-mini", "gpt-test", "o3-mini"]
    assert [r.path for r in openai_server.requests] == ["/v1/models"]
    long = spezichat(openai_server, "models", "-b", "openai", "--long")
    assert long.stdout.splitlines()[0] == "gpt-4o-mini\tspezichat-tests 2023-11-14"


def test_key_set_show_delete_and_use(openai_server: OpenAITestServer, isolated_dirs: Path) -> None:
    stored = spezichat(openai_server, "key", "set", key=None, input=f"{KEY}\n")
    assert stored.returncode == 0, stored.stderr
    key_file = isolated_dirs / "xdg_config_home" / "spezichat" / "openai_api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert KEY not in stored.stdout

    shown = spezichat(openai_server, "key", "show", key=None)
    assert shown.returncode == 0
    assert shown.stdout == f"{'*' * len(KEY)} (from {key_file})\n"

    # The stored key is what the request carries when OPENAI_API_KEY is unset.
    openai_server.script(Reply(text="Stored key works."))
    asked = spezichat(openai_server, "ask", "-b", "openai", "-m", "gpt-test", "hi", key=None)
    assert asked.stdout == "Stored key works."
    assert openai_server.chat_requests[0].bearer == KEY

    deleted = spezichat(openai_server, "key", "delete", key=None)
    assert deleted.returncode == 0 and not key_file.exists()
    missing = spezichat(openai_server, "key", "show", key=None)
    assert missing.returncode == 1 and "spezichat key set" in missing.stderr


def test_ask_without_a_model_says_how_to_choose_one(openai_server: OpenAITestServer) -> None:
    result = spezichat(openai_server, "ask", "-b", "openai", "hi")
    assert result.returncode == 1
    assert "error: No OpenAI model is chosen." in result.stderr
    assert "spezichat models --backend openai" in result.stderr
    assert openai_server.requests == []
