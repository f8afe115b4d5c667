"""MCP servers in the app (Textual's Pilot): approval, results, the MCP servers screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.mcp import ServerState
from backends.runner import Runner
from tests.mcp.conftest import demo, wait_ended
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall
from tests.tui.helpers import SIZE, approval_dialog, chat, items, type_text, wait_until
from tui.app import SpeziChatApp
from tui.screens.mcp import McpScreen
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import ToolCallItem


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "history.db") as store:
        yield store


@pytest.fixture
def settings(openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = "gpt-test"
    return settings


async def send_and_answer(pilot: object, text: str, key: str) -> ToolCallItem:
    await type_text(pilot, text)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    dialog = await approval_dialog(pilot)  # type: ignore[arg-type]
    assert dialog.call.name == "demo__echo"
    await pilot.press(key)  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: not chat(pilot).generating, "the reply finished")  # type: ignore[arg-type]
    return next(item for item in items(pilot) if isinstance(item, ToolCallItem))  # type: ignore[arg-type]


async def test_tool_call_round_trip_with_approval_and_servers_end_at_exit(
    settings: Settings, store: Store, openai_server: OpenAITestServer, pid_file: Path
) -> None:
    settings.mcp.servers = {"demo": demo(env={"DEMO_PID_FILE": str(pid_file)})}
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("demo__echo", {"text": "through MCP"})]),
        Reply(text="It echoed."),
    )
    app = SpeziChatApp(settings=settings, store=store, runner=Runner())
    async with app.run_test(size=SIZE) as pilot:
        assert app.mcp is not None
        assert app.mcp.servers()[0].state is ServerState.IDLE  # lazy: not at start-up
        tool = await send_and_answer(pilot, "Echo please", "y")
        assert tool.outcome == "ok" and tool.result == "through MCP"
    offered = [t["function"]["name"] for t in openai_server.chat_requests[0].body["tools"]]
    assert "demo__echo" in offered
    assert openai_server.chat_requests[-1].body["messages"][-1]["content"] == "through MCP"
    assert wait_ended(pid_file) == []  # closing spezichat ended the server


async def test_refused_call_is_reported_and_does_not_run(
    settings: Settings, store: Store, openai_server: OpenAITestServer
) -> None:
    settings.mcp.servers = {"demo": demo()}
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("demo__echo", {"text": "never"})]),
        Reply(text="Fine."),
    )
    app = SpeziChatApp(settings=settings, store=store, runner=Runner())
    async with app.run_test(size=SIZE) as pilot:
        tool = await send_and_answer(pilot, "Echo please", "escape")
        assert tool.outcome == "declined"
    assert "declined" in openai_server.chat_requests[-1].body["messages"][-1]["content"]


async def test_crash_mid_call_keeps_the_app_running(
    settings: Settings, store: Store, openai_server: OpenAITestServer
) -> None:
    settings.mcp.servers = {"demo": demo(approve="always")}
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("demo__crash", {})]),
        Reply(text="The tool broke."),
        Reply(text="Still here."),
    )
    app = SpeziChatApp(settings=settings, store=store, runner=Runner())
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Crash it")
        await pilot.press("enter")  # approve = "always": no dialog
        await wait_until(pilot, lambda: openai_server.chat_requests[1:], "the second request")
        await wait_until(pilot, lambda: not chat(pilot).generating, "the reply finished")
        tool = next(item for item in items(pilot) if isinstance(item, ToolCallItem))
        assert tool.outcome == "error" and "stopped unexpectedly" in (tool.result or "")
        assert app.mcp is not None and app.mcp.servers()[0].state is ServerState.FAILED
        await type_text(pilot, "Hello again")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(openai_server.chat_requests) == 3, "a new request")
        await wait_until(pilot, lambda: not chat(pilot).generating, "the reply finished")
        assert "tools" not in openai_server.chat_requests[2].body  # the failed server's gone


async def test_mcp_screen_lists_states_tools_and_restarts_and_disables(
    settings: Settings, store: Store
) -> None:
    settings.mcp.servers = {"demo": demo(), "broken": demo("--exit-at-start")}
    app = SpeziChatApp(settings=settings, store=store, runner=Runner())
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: chat(pilot), "the chat screen")
        app.action_mcp_servers()
        await wait_until(pilot, lambda: isinstance(app.screen, McpScreen), "the MCP screen")
        screen = app.screen
        assert isinstance(screen, McpScreen) and app.mcp is not None
        mcp = app.mcp
        await wait_until(pilot, lambda: mcp.servers()[0].state is not ServerState.IDLE, "start")
        await wait_until(pilot, lambda: not mcp.starting, "the servers started or failed")

        def shown() -> str:
            found = screen.query("#mcp-info")
            return str(found.first().render()) if found else ""

        await wait_until(pilot, lambda: "ready" in shown(), "the screen showing the change")
        info = shown()
        assert "ready" in info and "demo__echo" in info and "Repeat the text." in info
        await pilot.press("down")
        await pilot.pause()
        info = str(screen.query_one("#mcp-info").render())
        assert "failed" in info and "could not be started" in info and "fatal: no config" in info
        await pilot.press("up", "d")
        await wait_until(
            pilot,
            lambda: mcp.server("demo").state is ServerState.DISABLED,
            "disabled",  # type: ignore[union-attr]
        )
        await pilot.press("r")
        await wait_until(
            pilot,
            lambda: mcp.server("demo").state is ServerState.READY,
            "restarted",  # type: ignore[union-attr]
        )
        await pilot.press("escape")
