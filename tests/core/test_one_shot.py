"""One-shot generations (SpeziLLM's ``LLMRunner.oneShot``): as a stream of pieces that
arrive while the model still works, or collected into one string; on a copy of the
context either way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from backends.context import Context, Role
from backends.errors import LLMError
from backends.functions import llm_function
from backends.mock import MockPlatform, MockResponse, MockSchema, split_pieces
from backends.openai import OpenAIPlatform, OpenAISchema, RetryPolicy
from backends.runner import Runner
from backends.state import PlatformState
from tests.support.openai_server import OpenAITestServer, Reply

go = asyncio.Event()
started = asyncio.Event()


@llm_function
async def slow_lookup(topic: str) -> str:
    """Look something up; returns only once the test says go."""
    started.set()
    await go.wait()
    return f"facts about {topic}"


@pytest.fixture(autouse=True)
def _fresh_events() -> None:
    # Events made at import belong to no loop yet; new ones for each test's loop.
    global go, started
    go, started = asyncio.Event(), asyncio.Event()


def question() -> Context:
    context = Context.with_system(("Be brief.",))
    context.append_user("Tell me about owls.")
    return context


async def test_pieces_arrive_while_the_generation_is_still_running() -> None:
    schema = MockSchema(
        delay=0,
        functions=(slow_lookup,),
        responses=(
            MockResponse(text="Let me look. ", tool_calls=(("slow_lookup", {"topic": "owls"}),)),
            MockResponse(text="Owls hunt at night."),
        ),
    )
    context = question()
    before = list(context)
    runner = Runner([MockPlatform()])
    stream = runner.one_shot_stream(schema, context)
    early = [await anext(stream) for _ in split_pieces("Let me look. ")]
    assert "".join(early) == "Let me look. "
    # The next piece needs the function, which waits: the first pieces came before it.
    following = asyncio.ensure_future(anext(stream))
    await started.wait()
    assert not following.done() and runner.state is PlatformState.PROCESSING
    go.set()
    rest = [await following] + [piece async for piece in stream]
    assert rest == split_pieces("Owls hunt at night.")
    assert runner.state is PlatformState.IDLE
    assert list(context) == before  # the caller's context is untouched


async def test_one_shot_collects_the_stream() -> None:
    runner = Runner([MockPlatform()])
    schema = MockSchema(delay=0, responses=("Owls hunt at night.",))
    context = question()
    assert await runner.one_shot(schema, context) == "Owls hunt at night."
    pieces = [piece async for piece in runner.one_shot_stream(schema, context)]
    assert pieces == split_pieces("Owls hunt at night.")
    assert [entry.role for entry in context] == [Role.SYSTEM, Role.USER]


async def test_closing_the_stream_early_stops_the_generation() -> None:
    runner = Runner([MockPlatform()])
    schema = MockSchema(delay=0, functions=(slow_lookup,), responses=("One two three four.",))
    context = question()
    stream = runner.one_shot_stream(schema, context)
    assert await anext(stream) == "One"
    assert runner.state is PlatformState.PROCESSING
    await stream.aclose()
    assert runner.state is PlatformState.IDLE
    assert len(context) == 2


async def test_an_error_comes_out_of_the_stream() -> None:
    runner = Runner([MockPlatform()])
    schema = MockSchema(delay=0, responses=(MockResponse(text="Half", error=LLMError("Boom.")),))
    pieces: list[str] = []
    with pytest.raises(LLMError, match="Boom"):
        async for piece in runner.one_shot_stream(schema, question()):
            pieces.append(piece)
    assert pieces == ["Half"]
    assert runner.state is PlatformState.IDLE
    with pytest.raises(LLMError, match="Boom"):
        await runner.one_shot(schema, question())


# Over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server
        assert not server.spec_violations, server.spec_violations


async def test_one_shot_stream_over_http(server: OpenAITestServer) -> None:
    server.script(Reply(text="Owls hunt at night."), Reply(text="Owls hunt at night."))
    platform = OpenAIPlatform(
        base_url=server.base_url, api_key="sk-test-key", retry=RetryPolicy(max_attempts=1)
    )
    schema = OpenAISchema(model="gpt-test", test_model_access=False)
    context = question()
    async with Runner([platform]) as runner:
        pieces = [piece async for piece in runner.one_shot_stream(schema, context)]
        assert "".join(pieces) == "Owls hunt at night."
        assert await runner.one_shot(schema, context) == "Owls hunt at night."
    first, second = server.chat_requests
    assert first.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about owls."},
    ]
    assert second.body["messages"] == first.body["messages"]  # the context stayed as it was
    assert len(context) == 2
