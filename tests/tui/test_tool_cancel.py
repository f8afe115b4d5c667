"""Stopping a running function call in the app, its time limit, and dangling stored calls.

The loopback server rejects an assistant ``tool_calls`` message without results (400,
like the real API), so a conversation left in that state could not go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.context import CANCELLED_TOOL_RESULT, Context, Role, ToolCall
from backends.functions import llm_function
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall
from tests.support.terminal import terminal
from tests.tui.helpers import SIZE, approval_dialog, chat, items, replies, type_text, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import ErrorItem, ToolCallItem

_started = threading.Event()
_release = threading.Event()
"""Lets the blocked function return at the end of each test, whatever happened."""


@llm_function
def slow_lookup(topic: str) -> str:
    """Look something up in a very slow archive.

    Args:
        topic: What to look up.
    """
    _started.set()
    _release.wait(60)  # bounded, so that a broken stop fails the test instead of hanging it
    return "too late"


@pytest.fixture(autouse=True)
def _blocked_function() -> Iterator[None]:
    _started.clear()
    _release.clear()
    yield
    _release.set()


def _stored(store: Store) -> list[Any]:
    (conversation,) = store.list_conversations()
    return list(store.load_context(conversation.id))


def _tool_item(pilot: Any) -> ToolCallItem:
    return next(item for item in items(pilot) if isinstance(item, ToolCallItem))


async def _ask_and_approve(pilot: Any, text: str) -> None:
    await type_text(pilot, text)
    await pilot.press("enter")
    await approval_dialog(pilot)
    await pilot.press("y")
    await wait_until(pilot, _started.is_set, "the function running")


async def test_escape_while_a_function_runs_records_it_cancelled_and_the_chat_goes_on(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("slow_lookup", {"topic": "tides"}, id="call_slow")]),
        Reply(text="Understood, I stopped looking."),
    )
    app = make_app(openai_settings, tools=(slow_lookup,))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await _ask_and_approve(pilot, "Tides?")
        assert screen.generating
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        await pilot.pause()
        tool = _tool_item(pilot)
        assert tool.outcome == "error" and tool.result == CANCELLED_TOOL_RESULT
        stored = _stored(store)
        assert [e.role for e in stored] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL]
        assert stored[-1].tool_call_id == "call_slow"
        assert stored[-1].content == CANCELLED_TOOL_RESULT
        # The next message is accepted by the (strict) server.
        await type_text(pilot, "Never mind.")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(replies(pilot)) == 1, "the next reply")
        await wait_until(pilot, lambda: not screen.generating, "the next reply finished")
        assert not [item for item in items(pilot) if isinstance(item, ErrorItem)]
        assert replies(pilot)[-1].text == "Understood, I stopped looking."
    sent = openai_server.chat_requests[-1].body["messages"]
    assert {"role": "tool", "tool_call_id": "call_slow", "content": CANCELLED_TOOL_RESULT} in sent


async def test_a_function_past_its_time_limit_is_shown_failed_and_the_model_told(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    openai_settings.general.tool_timeout = 0.2
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("slow_lookup", {"topic": "tides"})]),
        Reply(text="The archive is too slow today."),
    )
    app = make_app(openai_settings, tools=(slow_lookup,))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await _ask_and_approve(pilot, "Tides?")
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        await pilot.pause()
        tool = _tool_item(pilot)
        assert tool.outcome == "error"
        assert "timed out" in tool.result and "0.2 seconds" in tool.result
        assert replies(pilot)[-1].text == "The archive is too slow today."
    sent = openai_server.chat_requests[-1].body["messages"][-1]
    assert sent["role"] == "tool" and sent["content"] == tool.result


async def test_a_stored_conversation_with_a_call_but_no_result_can_continue(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    # As an older version (or a crash mid-call) left it: the call, no result.
    conversation = store.create_conversation("Tides", "openai", "gpt-test")
    context = Context.with_system(["Be brief."])
    context.append_user("Tides?")
    context.append_tool_calls([ToolCall("call_lost", "slow_lookup", '{"topic": "tides"}')])
    for entry in context:
        store.save_entry(conversation.id, entry)
    openai_server.script(Reply(text="Let us start over."))
    app = make_app(openai_settings, tools=(slow_lookup,))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        assert screen.conversation is not None and screen.conversation.id == conversation.id
        await type_text(pilot, "Hello again")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(replies(pilot)) == 1, "the reply")
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        assert not [item for item in items(pilot) if isinstance(item, ErrorItem)]
        assert replies(pilot)[-1].text == "Let us start over."
    sent = openai_server.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3] == {
        "role": "tool",
        "tool_call_id": "call_lost",
        "content": CANCELLED_TOOL_RESULT,
    }


NEVER_RETURNS = '''
import threading
from pathlib import Path
from backends.functions import llm_function

@llm_function
def block_forever(topic: str) -> str:
    """Never returns.

    Args:
        topic: Anything.
    """
    Path({marker!r}).write_text("started")
    threading.Event().wait()
    return "never"
'''


def _within(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_quitting_the_real_app_while_a_function_never_returns_ends_the_process(
    openai_settings: Settings, openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    openai_settings.save()  # the real app reads config.toml (backend, model; key in the env)
    marker = tmp_path / "started"
    tools = tmp_path / "tools.py"
    tools.write_text(NEVER_RETURNS.format(marker=str(marker)), encoding="utf-8")
    openai_server.script(Reply(tool_calls=[ScriptedCall("block_forever", {"topic": "a"})]))
    with terminal(("--tools", str(tools))) as term:
        term.wait_for(lambda: "Message" in term.text(), "the chat screen")
        term.type("Tides?")
        term.wait_for(lambda: "Tides?" in term.text(), "the typed text on screen")
        term.type("\r")
        term.wait_for(lambda: "block_forever" in term.text(), "the approval dialog")
        # The dialog takes an answer only after a quiet moment: answer until it is taken.
        for _attempt in range(30):
            term.type("y")
            if _within(marker.exists, 2.0):
                break
        term.wait_for(marker.exists, "the function running")
        term.type("\x11")  # Ctrl+Q
        assert term.wait_exit() == 0  # fails (after a generous wait) if the process hangs
