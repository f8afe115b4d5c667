"""Platform and runner state (SpeziLLM's ``LLMPlatformState`` and ``LLMRunner.State``):
idle or processing, seen by listeners during real streams, and in the app's status bar."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.context import ToolCall
from backends.errors import LLMError
from backends.events import Event, StateChanged, TextDelta
from backends.functions import llm_function
from backends.mock import MockPlatform, MockResponse, MockSchema, MockSession
from backends.openai import OpenAIPlatform, OpenAISchema, RetryPolicy
from backends.runner import Runner
from backends.state import LLMState, PlatformState
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, replies, type_text, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store

IDLE, PROCESSING = PlatformState.IDLE, PlatformState.PROCESSING


@llm_function
def note(text: str) -> str:
    """Write a note."""
    return f"noted {text}"


def ask(platform: MockPlatform, *responses: MockResponse | str) -> MockSession:
    session = platform.session(MockSchema(delay=0, functions=(note,), responses=responses))
    session.context.append_user("Hello?")
    return session


async def drain(session: Any) -> list[Event]:
    return [event async for event in session.stream()]


class Recorder:
    """A listener that notes each state with the session's state at that moment."""

    def __init__(self, session: MockSession | None = None) -> None:
        self.session = session
        self.states: list[PlatformState] = []
        self.session_states: list[LLMState] = []

    def __call__(self, state: PlatformState) -> None:
        self.states.append(state)
        if self.session is not None:
            self.session_states.append(self.session.state)


async def test_a_stream_makes_the_platform_and_the_runner_process_then_idle() -> None:
    platform = MockPlatform()
    runner = Runner([platform])
    session = ask(platform, "One two three.")
    on_platform, on_runner = Recorder(session), Recorder()
    platform.add_state_listener(on_platform)
    runner.add_state_listener(on_runner)
    assert platform.state is IDLE and runner.state is IDLE

    seen: list[tuple[Event, PlatformState, PlatformState]] = []
    async for event in session.stream():
        seen.append((event, platform.state, runner.state))

    assert on_platform.states == [PROCESSING, IDLE]
    assert on_runner.states == [PROCESSING, IDLE]
    # Ready as the platform goes idle, and idle before the final READY event goes out.
    assert on_platform.session_states == [LLMState.UNINITIALIZED, LLMState.READY]
    *during, (last, platform_after, runner_after) = seen
    assert last == StateChanged(LLMState.READY)
    assert (platform_after, runner_after) == (IDLE, IDLE)
    assert any(isinstance(event, TextDelta) for event, _, _ in during)
    assert all((on, run) == (PROCESSING, PROCESSING) for _, on, run in during)


async def test_idle_again_after_cancel_error_and_an_early_close() -> None:
    platform = MockPlatform()
    recorder = Recorder()
    platform.add_state_listener(recorder)

    stopped = ask(platform, "A reply that is stopped after its first word.")
    async for event in stopped.stream():
        if isinstance(event, TextDelta):
            stopped.cancel()
    assert recorder.states == [PROCESSING, IDLE] and stopped.state is LLMState.READY

    failing = ask(platform, MockResponse(text="partial", error=LLMError("Boom.")))
    with pytest.raises(LLMError, match="Boom"):
        await drain(failing)
    assert recorder.states == [PROCESSING, IDLE] * 2 and failing.state is LLMState.ERROR

    left = ask(platform, "Only the first piece is read.")
    pieces = left.generate()
    assert (await anext(pieces)) == "Only"
    assert platform.state is PROCESSING
    await pieces.aclose()
    assert recorder.states == [PROCESSING, IDLE] * 3 and platform.state is IDLE


@dataclass
class Gate:
    """An approver that holds a session in its function call until opened."""

    reached: asyncio.Event
    opened: asyncio.Event

    @classmethod
    def new(cls) -> Gate:
        return cls(asyncio.Event(), asyncio.Event())

    async def __call__(self, call: ToolCall) -> bool:
        self.reached.set()
        await self.opened.wait()
        return True


def held(platform: MockPlatform, gate: Gate) -> MockSession:
    session = ask(platform, MockResponse(tool_calls=(("note", {"text": "x"}),)), "Done.")
    session.approver = gate
    return session


async def test_processing_until_the_last_of_several_sessions_ends() -> None:
    platform, other = MockPlatform(), MockPlatform()
    runner = Runner([platform])
    on_platform, on_runner = Recorder(), Recorder()
    platform.add_state_listener(on_platform)
    runner.add_state_listener(on_runner)

    gate = Gate.new()
    first = asyncio.ensure_future(drain(held(platform, gate)))
    await gate.reached.wait()
    assert platform.state is PROCESSING and runner.state is PROCESSING
    await drain(ask(platform, "A second reply meanwhile."))
    assert on_platform.states == [PROCESSING] and on_runner.states == [PROCESSING]

    # A later platform of the same schema type replaces the first in the runner: the
    # runner follows the new one only, and forgets the one still busy.
    runner.register(other)
    assert on_runner.states == [PROCESSING, IDLE]
    await drain(ask(other, "On the new platform."))
    assert on_runner.states == [PROCESSING, IDLE, PROCESSING, IDLE]

    gate.opened.set()
    await first
    assert on_platform.states == [PROCESSING, IDLE]
    assert on_runner.states == [PROCESSING, IDLE, PROCESSING, IDLE]


class OtherSchema(MockSchema):
    """A second schema type, so that one runner holds two platforms."""


class OtherPlatform(MockPlatform):
    schema_type = OtherSchema


async def test_the_runner_processes_while_any_platform_does() -> None:
    mock, other = MockPlatform(), OtherPlatform()
    runner = Runner([mock, other])
    on_runner = Recorder()
    runner.add_state_listener(on_runner)
    gate = Gate.new()
    first = asyncio.ensure_future(drain(held(mock, gate)))
    await gate.reached.wait()

    second = other.session(OtherSchema(delay=0, responses=("Elsewhere.",)))
    second.context.append_user("Hi")
    await drain(second)
    assert other.state is IDLE
    assert runner.state is PROCESSING and on_runner.states == [PROCESSING]
    gate.opened.set()
    await first
    assert runner.state is IDLE and on_runner.states == [PROCESSING, IDLE]


async def test_removed_and_failing_listeners(caplog: pytest.LogCaptureFixture) -> None:
    platform = MockPlatform()
    removed, kept = Recorder(), Recorder()
    remove = platform.add_state_listener(removed)

    def broken(state: PlatformState) -> None:
        raise RuntimeError("listener bug")

    platform.add_state_listener(broken)
    platform.add_state_listener(kept)
    await drain(ask(platform, "First."))
    remove()
    remove()  # twice is harmless
    with caplog.at_level(logging.ERROR, logger="backends.session"):
        events = await drain(ask(platform, "Second."))
    assert events[-1] == StateChanged(LLMState.READY)  # the failing listener broke nothing
    assert removed.states == [PROCESSING, IDLE]
    assert kept.states == [PROCESSING, IDLE] * 2
    assert "a state listener failed" in caplog.text


# Over HTTP, and in the app ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server
        server.release()
        assert not server.spec_violations, server.spec_violations


async def test_an_openai_stream_makes_the_platform_process(server: OpenAITestServer) -> None:
    server.script(Reply(text="Hello from the server.", chunk_size=2))
    platform = OpenAIPlatform(
        base_url=server.base_url, api_key="sk-test-key", retry=RetryPolicy(max_attempts=1)
    )
    recorder = Recorder()
    platform.add_state_listener(recorder)
    try:
        session = platform.session(OpenAISchema(model="gpt-test", test_model_access=False))
        session.context.append_user("Hi")
        during = [
            platform.state async for event in session.stream() if isinstance(event, TextDelta)
        ]
    finally:
        await platform.aclose()
    assert during and set(during) == {PROCESSING}
    assert recorder.states == [PROCESSING, IDLE] and platform.state is IDLE


async def test_the_status_bar_shows_processing_while_a_reply_streams(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = "gpt-test"
    text = " ".join(f"word{i}" for i in range(50))
    server.script(Reply(text=text, chunk_size=4, stall_after=5))
    with Store(tmp_path / "history.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            screen = chat(pilot)
            status = screen.status
            assert status.activity == "idle" and "openai idle ·" in str(status.render())
            await type_text(pilot, "Talk")
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: replies(pilot) and replies(pilot)[0].body.source, "some text"
            )
            # The server stalls mid-reply: the backend is processing.
            assert status.activity == "processing"
            assert "openai processing ·" in str(status.render())
            await pilot.press("escape")  # stop the reply
            await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
            await wait_until(pilot, lambda: status.activity == "idle", "idle again")
            assert "openai idle ·" in str(status.render())
