"""The chat against the loopback OpenAI server: streaming, stop, errors, tools, retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textual.message import Message

from backends.context import Role
from backends.functions import llm_function
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, quota_error
from tests.tui.helpers import (
    SIZE,
    approval_dialog,
    chat,
    items,
    replies,
    send,
    type_text,
    wait_until,
)
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import AssistantMessage, ErrorItem, ToolCallItem, UserMessage
from tui.widgets.prompt import PromptInput

LONG = " ".join(f"word{i}" for i in range(400))


@llm_function
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: Name of the city.
    """
    return f"Sunny and 21 degrees in {city}."


def _stored(store: Store) -> list[Any]:
    conversations = store.list_conversations()
    assert len(conversations) == 1
    return list(store.load_context(conversations[0].id))


async def test_streamed_reply_is_shown_as_markdown_and_stored(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    text = "Here is code:\n\n```python\nprint('hi')\n```\n\nDone."
    openai_server.script(Reply(text=text, chunk_size=2))
    seen: list[Message] = []
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await type_text(pilot, "first line\nsecond line")
        await pilot.press("enter")
        screen = chat(pilot)
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        await pilot.pause()
        user, reply = items(pilot)
        assert isinstance(user, UserMessage) and user.text == "first line\nsecond line"
        assert isinstance(reply, AssistantMessage) and reply.text == text
        assert reply.body.source == text  # the final text is what is drawn
        assert screen.prompt.text == ""
        status = screen.status
        assert status.state == "ready" and status.usage is not None and status.usage[1] > 0
        assert status.speed is not None and not status.estimated
    # The prompt posted the text up to the screen, newline included.
    # (The hook sees a message at every node it bubbles through: count distinct ones.)
    submitted = {id(m): m for m in seen if isinstance(m, PromptInput.Submitted)}
    assert [m.text for m in submitted.values()] == ["first line\nsecond line"]
    body = openai_server.chat_requests[-1].body
    assert body["stream"] is True and body["model"] == "gpt-test"
    assert body["messages"][-1] == {"role": "user", "content": "first line\nsecond line"}
    entries = _stored(store)
    assert [e.role for e in entries] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert entries[-1].content == text and entries[-1].complete


async def test_escape_stops_the_reply_keeps_it_marked_and_stored(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    # 30 chunks, then the server goes quiet: the reply is still streaming when Esc comes.
    openai_server.script(Reply(text=LONG, chunk_size=4, stall_after=30))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Tell me everything")
        await pilot.press("enter")
        # The user's message is stored before the reply arrives.
        await wait_until(pilot, lambda: len(replies(pilot)) == 1, "the reply started")
        assert [e.role for e in _stored(store)][:2] == [Role.SYSTEM, Role.USER]
        # Text appears on screen while it streams.
        await wait_until(
            pilot, lambda: len(replies(pilot)[0].body.source) > 100, "some text on screen"
        )
        assert screen.generating
        # Sending while a reply streams is refused; the typed text stays.
        await type_text(pilot, "wait")
        await pilot.press("enter")
        assert screen.prompt.text == "wait" and screen.generating
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        await pilot.pause()
        reply = replies(pilot)[0]
        assert reply.text == LONG[: len(reply.text)] and 100 < len(reply.text) <= 30 * 4
        assert "stopped" in str(reply.query_one(".marker").render())
        assert screen.status.state == "ready"
        stored = _stored(store)[-1]
        assert stored.role is Role.ASSISTANT and not stored.complete
        assert stored.finish_reason == "stopped" and stored.content == reply.text
        # The app goes on: the kept text is sent next.
        openai_server.script(Reply(text="Sure."))
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(replies(pilot)) == 2, "a second reply")
        await wait_until(pilot, lambda: not screen.generating, "the second reply finished")
        assert openai_server.chat_requests[-1].body["messages"][-1]["content"] == "wait"


async def test_server_error_is_shown_inline_and_the_app_keeps_working(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(quota_error(), Reply(text="Back again."))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        errors = [item for item in items(pilot) if isinstance(item, ErrorItem)]
        assert len(errors) == 1
        shown = errors[0].copy_text()
        assert errors[0].error.suggestion in shown and "quota" in shown.lower()
        assert chat(pilot).status.state == "error"
        await pilot.press("ctrl+r")  # retry the same message
        await wait_until(pilot, lambda: not chat(pilot).generating, "the retry finished")
        await pilot.pause()
        assert replies(pilot)[-1].text == "Back again."
        assert not [item for item in items(pilot) if isinstance(item, ErrorItem)]
        assert chat(pilot).status.state == "ready"


async def test_tool_call_needs_approval_and_its_result_reaches_the_model(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Berlin"})]),
        Reply(text="It is sunny in Berlin."),
    )
    app = make_app(openai_settings, tools=(get_weather,))
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Weather in Berlin?")
        await pilot.press("enter")
        dialog = await approval_dialog(pilot)
        assert dialog.call.name == "get_weather"
        assert json.loads(dialog.call.arguments) == {"city": "Berlin"}
        await pilot.press("y")
        await wait_until(pilot, lambda: not chat(pilot).generating, "the reply finished")
        await pilot.pause()
        tool = next(item for item in items(pilot) if isinstance(item, ToolCallItem))
        assert tool.outcome == "ok" and tool.result == "Sunny and 21 degrees in Berlin."
        assert replies(pilot)[-1].text == "It is sunny in Berlin."
    follow_up = openai_server.chat_requests[-1].body["messages"]
    assert follow_up[-1]["role"] == "tool"
    assert follow_up[-1]["content"] == "Sunny and 21 degrees in Berlin."
    roles = [e.role for e in _stored(store)]
    assert roles == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


async def test_declined_tool_call_is_reported_to_the_model(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})]),
        Reply(text="Understood, I will not check."),
    )
    app = make_app(openai_settings, tools=(get_weather,))
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Weather in Paris?")
        await pilot.press("enter")
        await approval_dialog(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not chat(pilot).generating, "the reply finished")
        tool = next(item for item in items(pilot) if isinstance(item, ToolCallItem))
        assert tool.outcome == "declined"
    assert "declined" in openai_server.chat_requests[-1].body["messages"][-1]["content"]


async def test_retry_replaces_the_last_reply_on_screen_and_in_the_store(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    openai_server.script(Reply(text="First answer."), Reply(text="Second answer."))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "question")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not chat(pilot).generating, "the retry finished")
        await pilot.pause()
        assert [r.text for r in replies(pilot)] == ["Second answer."]
    contents = [e.content for e in _stored(store) if e.role is Role.ASSISTANT]
    assert contents == ["Second answer."]


async def test_quitting_while_a_reply_streams_keeps_what_arrived(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    openai_server.script(Reply(text=LONG, chunk_size=4, stall_after=20))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Go on")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: len(replies(pilot)) == 1 and replies(pilot)[0].copy_text(), "text"
        )
        await wait_until(pilot, lambda: len(replies(pilot)[0].copy_text()) >= 60, "some text")
        shown = replies(pilot)[0].copy_text()
        await pilot.press("ctrl+q")
    last = _stored(store)[-1]
    assert last.role is Role.ASSISTANT and last.content.startswith(shown)
    assert LONG.startswith(last.content)
    assert not last.complete and last.finish_reason == "stopped"
