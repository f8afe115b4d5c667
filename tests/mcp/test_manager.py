"""The MCP client layer against real servers written with the SDK (stdio and HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.errors import LLMError
from backends.functions import llm_function
from backends.mcp import (
    McpCrashError,
    McpManager,
    McpStartError,
    McpTimeoutError,
    ServerState,
    parse_server,
)
from backends.mcp.tools import McpTool
from tests.mcp.conftest import demo, wait_ended


@llm_function
def demo__echo(text: str) -> str:
    """A Python function whose name an MCP tool would take.

    Args:
        text: Anything.
    """
    return f"python: {text}"


def manager(tmp_path: Path, **servers: dict[str, object]) -> McpManager:
    configs = [parse_server(name, table) for name, table in servers.items()]
    return McpManager(configs, log_dir=tmp_path / "logs")


def tool(tools: tuple[McpTool, ...], name: str) -> McpTool:
    return next(t for t in tools if t.name == name)


async def test_stdio_and_http_round_trip(tmp_path: Path, http_mcp: str) -> None:
    mcp = manager(tmp_path, demo=demo(), web={"url": http_mcp, "headers": {"X-Test": "1"}})
    try:
        assert [info.state for info in mcp.servers()] == [ServerState.IDLE] * 2
        mcp.start()
        await mcp.wait()
        assert [info.state for info in mcp.servers()] == [ServerState.READY] * 2
        tools = mcp.tools()
        names = [t.name for t in tools]
        assert "demo__echo" in names and "web__echo" in names
        add = tool(tools, "web__add")
        assert add.to_openai()["function"]["parameters"]["required"] == ["a", "b"]
        result = await tool(tools, "demo__echo").invoke('{"text": "hello"}', timeout=30)
        assert (result.content, result.is_error) == ("hello", False)
        result = await add.invoke('{"a": 2, "b": 40}', timeout=30)
        assert (result.content, result.is_error) == ("42", False)
    finally:
        await mcp.aclose()


async def test_arguments_are_validated_and_server_errors_are_results(tmp_path: Path) -> None:
    mcp = manager(tmp_path, demo=demo())
    try:
        mcp.start()
        await mcp.wait()
        tools = mcp.tools()
        bad = await tool(tools, "demo__add").invoke('{"a": "two", "b": 1}', timeout=30)
        assert bad.is_error and "Invalid arguments for function 'demo__add'" in bad.content
        assert "'a'" in bad.content
        not_json = await tool(tools, "demo__add").invoke("{a: 1", timeout=30)
        assert not_json.is_error and "not valid JSON" in not_json.content
        failed = await tool(tools, "demo__fail").invoke('{"reason": "no"}', timeout=30)
        assert failed.is_error and "refused: no" in failed.content
        # The server stays usable after an error.
        ok = await tool(tools, "demo__echo").invoke('{"text": "still here"}', timeout=30)
        assert ok.content == "still here"
    finally:
        await mcp.aclose()


async def test_names_never_clash_with_python_functions_or_other_servers(tmp_path: Path) -> None:
    mcp = manager(tmp_path, demo=demo(), **{"demo!": demo()})
    try:
        mcp.start()
        await mcp.wait()
        python_names = [demo__echo.name]
        tools = mcp.tools(reserved=python_names)
        names = [t.name for t in tools]
        assert len(set(names)) == len(names)
        assert "demo__echo" not in names  # the Python function keeps its name
        assert "demo__echo_2" in names and "demo__echo_3" in names  # both servers' echo
        for name in names:
            assert len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name)
        echo = tool(tools, "demo__echo_2")
        assert (await echo.invoke('{"text": "x"}', timeout=30)).content == "x"
    finally:
        await mcp.aclose()


async def test_a_server_that_fails_to_start_is_a_typed_error_with_its_stderr_logged(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    mcp = manager(
        tmp_path,
        broken=demo("--exit-at-start"),
        missing={"command": "no-such-mcp-server-command"},
        good=demo(),
    )
    try:
        mcp.start()
        await mcp.wait()
        broken, missing, good = mcp.servers()
        assert good.state is ServerState.READY  # the others go on
        assert broken.state is ServerState.FAILED
        assert isinstance(broken.error, McpStartError)
        assert "fatal: no config for the demo server" in broken.error.reason
        assert isinstance(missing.error, McpStartError)
        assert "not found" in missing.error.reason
        for error in (broken.error, missing.error):
            assert error.description and error.reason and error.suggestion
        assert broken.log_path is not None
        assert "fatal: no config" in broken.log_path.read_text()
        assert broken.log_path.stat().st_mode & 0o077 == 0
        assert [t.server for t in mcp.tools()] == ["good"] * len(good.tools)
    finally:
        await mcp.aclose()
    assert "fatal" not in capfd.readouterr().err  # stderr went to the log, not the terminal


async def test_a_server_that_hangs_at_start_times_out(tmp_path: Path, pid_file: Path) -> None:
    mcp = manager(
        tmp_path, slow=demo("--hang-at-start", timeout=1, env={"DEMO_PID_FILE": str(pid_file)})
    )
    try:
        mcp.start()
        await mcp.wait()
        (slow,) = mcp.servers()
        assert slow.state is ServerState.FAILED
        assert isinstance(slow.error, McpTimeoutError)
        assert "within 1 seconds" in slow.error.reason
        assert wait_ended(pid_file) == []  # what timed out was stopped
    finally:
        await mcp.aclose()


async def test_a_hanging_call_times_out_and_a_crash_becomes_an_error_result(
    tmp_path: Path,
) -> None:
    mcp = manager(tmp_path, demo=demo())
    try:
        mcp.start()
        await mcp.wait()
        tools = mcp.tools()
        hung = await tool(tools, "demo__hang").invoke("{}", timeout=0.5)
        assert hung.is_error and "limit of 0.5 seconds" in hung.content
        crashed = await tool(tools, "demo__crash").invoke("{}", timeout=30)
        assert crashed.is_error and "stopped unexpectedly" in crashed.content
        assert "crashing now" in crashed.content  # its last words, from its stderr
        (info,) = mcp.servers()
        assert info.state is ServerState.FAILED and isinstance(info.error, McpCrashError)
        assert mcp.tools() == ()  # a failed server offers nothing
        after = await tool(tools, "demo__echo").invoke('{"text": "x"}', timeout=30)
        assert after.is_error and "not running" in after.content
        mcp.restart("demo")
        await mcp.wait()
        echo = tool(mcp.tools(), "demo__echo")
        assert (await echo.invoke('{"text": "back"}', timeout=30)).content == "back"
    finally:
        await mcp.aclose()


async def test_closing_ends_every_server_it_started(tmp_path: Path, pid_file: Path) -> None:
    env = {"DEMO_PID_FILE": str(pid_file)}
    mcp = manager(tmp_path, one=demo(env=env), two=demo(env=env), off=demo(env=env, enabled=False))
    mcp.start()
    await mcp.wait()
    assert len(pid_file.read_text().split()) == 2  # the disabled one did not start
    await mcp.aclose()
    assert wait_ended(pid_file) == []


async def test_disable_stops_a_server_and_hides_its_tools(tmp_path: Path, pid_file: Path) -> None:
    mcp = manager(tmp_path, demo=demo(env={"DEMO_PID_FILE": str(pid_file)}))
    try:
        mcp.start()
        await mcp.wait()
        assert mcp.tools()
        mcp.disable("demo")
        assert mcp.server("demo").state is ServerState.DISABLED  # type: ignore[union-attr]
        assert mcp.tools() == ()
        assert wait_ended(pid_file) == []
    finally:
        await mcp.aclose()


async def test_descriptions_lose_control_characters_results_keep_exact_text(
    tmp_path: Path,
) -> None:
    mcp = manager(tmp_path, demo=demo())
    try:
        mcp.start()
        await mcp.wait()
        shout = tool(mcp.tools(), "demo__shout")
        assert "\x1b" not in shout.description and "␛]52" in shout.description
        assert "\x1b" not in json.dumps(shout.to_openai(), ensure_ascii=False)
        result = await shout.invoke('{"text": "hi"}', timeout=30)
        assert result.content == "\x1b[2JHI\x1b]0;title\x07"  # for the model, as sent
    finally:
        await mcp.aclose()


def test_header_values_and_variables_are_checked_without_showing_values() -> None:
    config = parse_server(
        "web", {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${TOK}"}}
    )
    with pytest.raises(LLMError) as missing:
        config.expanded({})
    assert "TOK" in missing.value.reason
    with pytest.raises(LLMError) as broken:
        config.expanded({"TOK": "secret-value\n"})
    assert "secret-value" not in broken.value.explain()
    assert config.expanded({"TOK": "abc"}).headers == {"Authorization": "Bearer abc"}
