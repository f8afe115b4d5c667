"""The session state machine, tool loop and runner, driven through the mock platform."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import pytest

from backends import (
    IllegalContextError,
    LLMError,
    LLMState,
    LLMStateError,
    PlatformNotFoundError,
    Runner,
    StateChanged,
    TextDelta,
    ToolCall,
    ToolCallRequested,
    ToolCallResult,
    ToolLoopError,
    Usage,
    llm_function,
)
from backends.context import Context, Role
from backends.mock import DEFAULT_REPLY, MockPlatform, MockResponse, MockSchema, MockSession
from backends.session import Schema


@llm_function
def get_weather(city: str) -> str:
    """Get the weather."""
    return f"Sunny in {city}"


def make(schema: MockSchema) -> MockSession:
    session = MockPlatform().session(schema)
    session.context.append_user("Hello")
    return session


async def test_generate_streams_pieces_and_injects_into_context() -> None:
    session = make(MockSchema(delay=0, system_prompts=("sys",)))
    assert session.state is LLMState.UNINITIALIZED
    pieces = [piece async for piece in session.generate()]
    assert len(pieces) > 10
    assert "".join(pieces) == DEFAULT_REPLY
    assert session.state is LLMState.READY
    reply = session.context[-1]
    assert (reply.role, reply.content, reply.complete) == (Role.ASSISTANT, DEFAULT_REPLY, True)
    assert session.context[0].content == "sys"


async def test_state_events_in_order() -> None:
    session = make(MockSchema(delay=0, responses=("hi there",)))
    states = [e.state for e in [e async for e in session.stream()] if isinstance(e, StateChanged)]
    assert states == [LLMState.LOADING, LLMState.GENERATING, LLMState.READY]
    session.context.append_user("again")
    states = [e.state for e in [e async for e in session.stream()] if isinstance(e, StateChanged)]
    assert states == [LLMState.GENERATING, LLMState.READY]


async def test_no_injection_leaves_context_untouched() -> None:
    session = make(MockSchema(delay=0, responses=("x y",), inject_into_context=False))
    assert "".join([p async for p in session.generate()]) == "x y"
    assert [e.role for e in session.context] == [Role.USER]


async def test_cancel_keeps_partial_reply_marked_stopped() -> None:
    session = make(MockSchema(delay=0.001, responses=("one two three four five six",)))
    received = []
    async for piece in session.generate():
        received.append(piece)
        if len(received) == 2:
            session.cancel()
    assert received == ["one", " two"]
    reply = session.context[-1]
    assert (reply.content, reply.complete, reply.finish_reason) == ("one two", False, "stopped")
    assert session.state is LLMState.READY
    # The session is usable again afterwards.
    session.context.append_user("more")
    assert "".join([p async for p in session.generate()]).startswith("one")


async def test_consumer_breaking_out_marks_reply_stopped() -> None:
    session = make(MockSchema(delay=0, responses=("a b c d",)))
    stream = session.generate()
    async for _piece in stream:
        break
    await stream.aclose()
    assert session.state is LLMState.READY
    assert session.context[-1].finish_reason == "stopped"


async def test_task_cancellation_is_handled() -> None:
    session = make(MockSchema(delay=10, responses=("slow reply",)))

    async def consume() -> None:
        async for _ in session.generate():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.state is LLMState.READY


async def test_error_keeps_partial_reply_and_sets_error_state() -> None:
    failure = LLMError("Boom.", reason="The server fell over.", suggestion="Try again.")
    session = make(MockSchema(delay=0, responses=(MockResponse(text="half a", error=failure),)))
    pieces: list[str] = []
    with pytest.raises(LLMError, match="Boom"):
        async for piece in session.generate():
            pieces.append(piece)
    assert "".join(pieces) == "half a"
    assert session.state is LLMState.ERROR and session.error is failure
    reply = session.context[-1]
    assert (reply.content, reply.complete, reply.finish_reason) == ("half a", False, "error")


async def test_unexpected_exception_is_wrapped() -> None:
    class Broken(MockSession):
        async def _generate_once(self, context: Context):  # type: ignore[override]
            yield TextDelta("x")
            raise ZeroDivisionError("bad math")

    session = Broken(MockPlatform(), MockSchema())
    session.context.append_user("hi")
    with pytest.raises(LLMError) as info:
        [p async for p in session.generate()]
    assert "ZeroDivisionError: bad math" in info.value.reason


async def test_state_guards() -> None:
    session = MockPlatform().session(MockSchema(delay=0))
    with pytest.raises(IllegalContextError):
        [p async for p in session.generate()]
    session.context.append_user("hi")
    stream = session.generate()
    await stream.__anext__()
    with pytest.raises(LLMStateError):
        await session.generate().__anext__()
    await stream.aclose()


async def test_tool_loop_runs_functions_and_records_everything() -> None:
    schema = MockSchema(
        delay=0,
        functions=(get_weather,),
        responses=(
            MockResponse(text="Checking.", tool_calls=(("get_weather", {"city": "Berlin"}),)),
            MockResponse(text="It is sunny."),
        ),
    )
    session = make(schema)
    events = [e async for e in session.stream()]
    requested = [e for e in events if isinstance(e, ToolCallRequested)]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [r.call.name for r in requested] == ["get_weather"]
    assert [(r.content, r.is_error, r.approved) for r in results] == [
        ("Sunny in Berlin", False, True)
    ]
    assert any(isinstance(e, Usage) for e in events)
    roles = [(e.role, e.content) for e in session.context]
    assert roles == [
        (Role.USER, "Hello"),
        (Role.ASSISTANT, "Checking."),
        (Role.TOOL, "Sunny in Berlin"),
        (Role.ASSISTANT, "It is sunny."),
    ]
    assert json.loads(session.context[1].tool_calls[0].arguments) == {"city": "Berlin"}
    assert session.context[-1].complete


async def test_declined_and_unknown_calls_are_reported_to_the_model() -> None:
    schema = MockSchema(
        delay=0,
        functions=(get_weather,),
        responses=(
            MockResponse(tool_calls=(("get_weather", {"city": "Rome"}), ("launch", "{}"))),
            MockResponse(text="ok"),
        ),
    )
    session = make(schema)
    asked: list[ToolCall] = []

    async def deny(call: ToolCall) -> bool:
        asked.append(call)
        return False

    session.approver = deny
    events = [e async for e in session.stream()]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [c.name for c in asked] == ["get_weather"]  # unknown functions are never asked
    assert results[0].approved is False and "declined" in results[0].content
    assert results[1].is_error and "Unknown function 'launch'" in results[1].content
    assert "get_weather" in results[1].content


async def test_tool_loop_is_bounded() -> None:
    looping = MockResponse(tool_calls=(("get_weather", {"city": "X"}),))
    session = make(
        MockSchema(delay=0, functions=(get_weather,), responses=(looping,), max_tool_rounds=2)
    )
    with pytest.raises(ToolLoopError):
        [p async for p in session.generate()]


async def test_runner_routes_one_shot_and_rejects_unknown_schemas() -> None:
    async with Runner([MockPlatform()]) as runner:
        context = Context()
        context.append_user("repeat me")
        reply = await runner.one_shot(MockSchema(delay=0, echo=True), context)
        assert reply == "repeat me"
        assert len(context) == 1  # one_shot works on a copy
        with pytest.raises(PlatformNotFoundError):
            runner.session(Schema(model="x"))


async def test_platform_limits_concurrent_streams() -> None:
    platform = MockPlatform(max_concurrent_streams=1)
    active = 0
    peak = 0

    async def run() -> None:
        session = platform.session(MockSchema(delay=0.005, responses=("a b c",)))
        session.context.append_user("go")
        async for _ in session.generate():
            pass

    original = platform.stream_slot

    @asynccontextmanager
    async def counting_slot():  # type: ignore[no-untyped-def]
        nonlocal active, peak
        async with original():
            active += 1
            peak = max(peak, active)
            try:
                yield
            finally:
                active -= 1

    platform.stream_slot = counting_slot  # type: ignore[method-assign]
    await asyncio.gather(*(run() for _ in range(4)))
    assert peak == 1
