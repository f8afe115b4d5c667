"""Function calls that are stopped or never return (issue #13).

A stopped call gets a "cancelled" result so that the next request is valid (the loopback
server rejects an assistant ``tool_calls`` message without results, like the real API);
a conversation that lacks results (an older version, a crash) is repaired when it is
sent; a call that runs too long ends with an error naming the limit; and an abandoned
plain function cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.context import CANCELLED_TOOL_RESULT, Context, Role, ToolCall
from backends.events import Event, ToolCallResult
from backends.functions import Tool, llm_function
from backends.openai import OpenAIPlatform, OpenAISchema, OpenAISession
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, openai_server
from tests.support.processes import default_sigint

__all__ = ["openai_server"]

KEY = "sk-test-key"
HANG_BOUND_S = 60
"""Generous bound for things that must end: a hang check, not a measure of speed."""

_release = threading.Event()
"""Lets the blocked plain functions of a test return (at its end), whatever happened."""
_started = threading.Event()


@llm_function
def wait_plain(topic: str) -> str:
    """Look something up; takes forever.

    Args:
        topic: What to look up.
    """
    _started.set()
    _release.wait(HANG_BOUND_S)  # bounded, so that a broken stop fails instead of hanging
    return "too late"


@llm_function
async def wait_async(topic: str) -> str:
    """Look something up; takes forever.

    Args:
        topic: What to look up.
    """
    _started.set()
    await asyncio.sleep(3600)
    return "too late"


@pytest.fixture(autouse=True)
def _blocked_functions() -> Iterator[None]:
    _started.clear()
    _release.clear()
    yield
    _release.set()


@pytest.fixture
async def platform(openai_server: OpenAITestServer) -> AsyncIterator[OpenAIPlatform]:
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key=KEY)
    yield platform
    await platform.aclose()


def _session(platform: OpenAIPlatform, tool: Tool, **schema: Any) -> OpenAISession:
    session = platform.session(
        OpenAISchema(model="gpt-test", functions=(tool,), test_model_access=False, **schema)
    )
    session.context.append_user("Look it up, please.")
    return session


async def _collect(session: OpenAISession) -> list[Event]:
    async def run() -> list[Event]:
        return [event async for event in session.stream()]

    try:
        return await asyncio.wait_for(run(), HANG_BOUND_S)
    except TimeoutError:
        _release.set()  # let a blocked function end, so that the test fails, not hangs
        raise


def _tool_messages(server: OpenAITestServer, request: int) -> list[dict[str, Any]]:
    messages = server.chat_requests[request].body["messages"]
    return [m for m in messages if m["role"] == "tool"]


@pytest.mark.parametrize("tool", [wait_plain, wait_async], ids=["plain", "async"])
async def test_cancel_while_a_function_runs_records_a_cancelled_result(
    platform: OpenAIPlatform, openai_server: OpenAITestServer, tool: Tool
) -> None:
    openai_server.script(
        Reply(
            tool_calls=[
                ScriptedCall(tool.name, {"topic": "a"}, id="call_a"),
                ScriptedCall(tool.name, {"topic": "b"}, id="call_b"),
            ]
        ),
        Reply(text="Fine, I stopped."),
    )
    session = _session(platform, tool)

    async def stop_when_running() -> None:
        while not _started.is_set():
            await asyncio.sleep(0.01)
        session.cancel()

    stopper = asyncio.create_task(stop_when_running())
    events = await _collect(session)
    await stopper
    results = [e for e in events if isinstance(e, ToolCallResult)]
    # Both calls are answered: the running one and the one that never started.
    assert [(r.call.id, r.content, r.is_error) for r in results] == [
        ("call_a", CANCELLED_TOOL_RESULT, True),
        ("call_b", CANCELLED_TOOL_RESULT, True),
    ]
    tools = [e for e in session.context if e.role is Role.TOOL]
    assert [(e.tool_call_id, e.content) for e in tools] == [
        ("call_a", CANCELLED_TOOL_RESULT),
        ("call_b", CANCELLED_TOOL_RESULT),
    ]
    assert len(openai_server.chat_requests) == 1  # stopped: no request after the calls
    # The conversation goes on, and the server (strict like the real API) accepts it.
    session.context.append_user("Never mind.")
    await _collect(session)
    assert session.error is None
    assert session.context[-1].content == "Fine, I stopped."
    assert [m["tool_call_id"] for m in _tool_messages(openai_server, 1)] == ["call_a", "call_b"]


async def test_task_cancellation_during_a_function_leaves_a_valid_context(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(tool_calls=[ScriptedCall("wait_async", {"topic": "a"})]))
    session = _session(platform, wait_async)
    task = asyncio.create_task(_collect(session))
    while not _started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = session.context[-1]
    assert last.role is Role.TOOL and last.content == CANCELLED_TOOL_RESULT
    session.context.append_user("And now?")
    await _collect(session)
    assert session.error is None


@pytest.mark.parametrize("tool", [wait_plain, wait_async], ids=["plain", "async"])
async def test_a_function_that_never_returns_times_out(
    platform: OpenAIPlatform, openai_server: OpenAITestServer, tool: Tool
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedCall(tool.name, {"topic": "a"})]),
        Reply(text="It took too long."),
    )
    session = _session(platform, tool, tool_timeout=0.2)
    events = await _collect(session)
    (result,) = [e for e in events if isinstance(e, ToolCallResult)]
    assert result.is_error and "timed out" in result.content and "0.2 seconds" in result.content
    # The model got the error and answered.
    (sent,) = _tool_messages(openai_server, 1)
    assert sent["content"] == result.content
    assert session.context[-1].content == "It took too long."


def test_a_stored_call_without_results_is_answered_when_sent() -> None:
    context = Context.with_system(["Be brief."])
    context.append_user("Weather in Rome and Oslo?")
    context.append_tool_calls(
        [ToolCall("call_1", "get_weather", "{}"), ToolCall("call_2", "get_weather", "{}")]
    )
    context.append_tool_result("call_1", "get_weather", "Sunny.")
    context.append_tool_result("call_zzz", "get_weather", "Answers nothing.")
    context.append_user("Hello?")
    restored = Context.from_json(context.to_json())  # as loaded from history
    messages = restored.to_messages()
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in messages[2:]] == [
        ("assistant", None, None),
        ("tool", "call_1", "Sunny."),
        ("tool", "call_2", CANCELLED_TOOL_RESULT),
        ("user", None, "Hello?"),
    ]
    # Calls at the very end are answered too; the stored context itself is unchanged.
    restored.entries[-1:] = []
    assert restored.to_messages()[-1]["tool_call_id"] == "call_2"
    assert len(restored) == 5


async def test_a_loaded_conversation_with_a_dangling_call_can_continue(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    context = Context.with_system(["Be brief."])
    context.append_user("Look it up.")
    context.append_tool_calls([ToolCall("call_old", "wait_async", '{"topic": "x"}')])
    context.append_user("Hello again.")
    session = platform.session(
        OpenAISchema(model="gpt-test", test_model_access=False),
        Context.from_json(context.to_json()),
    )
    await _collect(session)
    assert session.error is None
    assert _tool_messages(openai_server, 0) == [
        {"role": "tool", "tool_call_id": "call_old", "content": CANCELLED_TOOL_RESULT}
    ]


TOOLS_FILE = """
import sys, threading
from backends.functions import llm_function

@llm_function
def block_forever(topic: str) -> str:
    '''Never returns.

    Args:
        topic: Anything.
    '''
    print("function started", file=sys.stderr, flush=True)
    threading.Event().wait()
    return "never"
"""


def _env(server: OpenAITestServer) -> dict[str, str]:
    env = os.environ.copy()
    env["OPENAI_BASE_URL"] = server.base_url
    env["OPENAI_API_KEY"] = KEY
    return env


def test_a_process_whose_function_timed_out_exits(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("block_forever", {"topic": "a"})]),
        Reply(text="Gave up on it."),
    )
    (tmp_path / "tools.py").write_text(TOOLS_FILE, encoding="utf-8")
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "spezichat"
    config.mkdir()
    (config / "config.toml").write_text("[general]\ntool_timeout = 0.2\n", encoding="utf-8")
    env = _env(openai_server)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    command = [sys.executable, "-m", "tui", "ask", "--backend", "openai", "--model", "gpt-test"]
    proc = subprocess.Popen(
        [*command, "--tools", str(tmp_path / "tools.py"), "--approve-tools", "go"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=HANG_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the process did not exit: the abandoned function kept it alive")
    assert proc.returncode == 0, err
    assert out.strip() == "Gave up on it."
    assert "timed out" in err and "0.2 seconds" in err  # shown to the user too
    sent = _tool_messages(openai_server, 1)
    assert "timed out" in sent[0]["content"]


def test_ctrl_c_in_ask_while_a_function_runs_exits_130(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    openai_server.script(Reply(tool_calls=[ScriptedCall("block_forever", {"topic": "a"})]))
    (tmp_path / "tools.py").write_text(TOOLS_FILE, encoding="utf-8")
    command = [sys.executable, "-m", "tui", "ask", "--backend", "openai", "--model", "gpt-test"]
    proc = subprocess.Popen(
        [*command, "--tools", str(tmp_path / "tools.py"), "--approve-tools", "go"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(openai_server),
        preexec_fn=default_sigint,
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:  # ends at EOF should the process die first
            seen.append(line)
            if "function started" in line:
                break
        assert any("function started" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=HANG_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("Ctrl+C did not end the process while the function ran")
    assert proc.returncode == 130, "".join(seen) + err


def test_tool_timeout_setting_is_checked() -> None:
    from backends.errors import ConfigurationError
    from tui.settings import Settings
    from tui.wiring import ChatOptions, make_schema

    settings = Settings.from_dict({"general": {"tool_timeout": 2.5}})
    schema = make_schema(ChatOptions(backend="mock"), settings)
    assert schema.tool_timeout == 2.5
    assert make_schema(ChatOptions(backend="mock"), Settings()).tool_timeout == 60
    for bad in (0, -1, "soon", True):
        broken = Settings.from_dict({"general": {"tool_timeout": bad}})
        with pytest.raises(ConfigurationError) as caught:
            make_schema(ChatOptions(backend="mock"), broken)
        assert "tool_timeout" in (caught.value.reason or "")
