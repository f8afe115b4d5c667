"""The engine process: real llama.cpp in a child process that may crash, be killed or be
replaced, and the app's side that must survive all of it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from backends.context import Role
from backends.errors import ConfigurationError
from backends.events import Notice, TextDelta
from backends.local.errors import (
    ContextSizeError,
    EngineCrashedError,
    GenerationError,
)
from backends.local.models import ModelStore
from backends.local.platform import LocalPlatform
from backends.local.process import describe_exit
from backends.local.protocol import decode, encode, error_from_dict
from backends.local.safemode import SafeModeMemory, build_uses_amx, check_mode, cpu_has_amx
from backends.state import LLMState
from tests.local.conftest import gemma_schema

STORY = "Write a long story about a dragon who collects teapots."


def platform_in(tmp_path: Path) -> LocalPlatform:
    return LocalPlatform(
        store=ModelStore(tmp_path / "models"),
        safe_mode=SafeModeMemory(tmp_path / "safe-mode.json"),
    )


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether child process ``pid`` has ended, all its threads, within ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.05)
    return False


# The protocol, without a process ---------------------------------------------------------
def test_errors_cross_the_pipe_with_their_type_and_text() -> None:
    original = ContextSizeError(reason="trained on 32768, configured 65536")
    line = encode({"ev": "error", "error": original.to_dict()})
    again = error_from_dict(decode(line)["error"])
    assert type(again) is ContextSizeError and again.explain() == original.explain()
    unknown = error_from_dict({"type": "SomethingNew", "reason": "why"})
    assert type(unknown) is GenerationError and unknown.reason == "why"
    with pytest.raises(ValueError):
        decode(b"[1, 2]")


def test_exit_statuses_are_named() -> None:
    assert describe_exit(-signal.SIGSEGV) == (
        "was killed by SIGSEGV (segmentation fault)",
        "SIGSEGV",
    )
    assert describe_exit(-signal.SIGKILL)[1] == "SIGKILL"
    assert describe_exit(3) == ("exited with status 3", None)


def test_extra_buffer_modes_are_checked() -> None:
    assert check_mode("auto") == "auto"
    with pytest.raises(ConfigurationError) as caught:
        check_mode("maybe")
    assert '"auto", "on" or "off"' in caught.value.reason


def test_safe_mode_memory_survives_a_new_instance(tmp_path: Path, gemma_path: Path) -> None:
    memory = SafeModeMemory(tmp_path / "state" / "safe-mode.json")
    assert not memory.is_safe_only(gemma_path)
    memory.remember(gemma_path, "SIGSEGV in the first reply")
    again = SafeModeMemory(tmp_path / "state" / "safe-mode.json")
    assert again.is_safe_only(gemma_path)
    assert again.models() == {str(gemma_path.resolve()): "SIGSEGV in the first reply"}


# Real engines ----------------------------------------------------------------------------
pytestmark_slow = pytest.mark.slow


@pytestmark_slow
async def test_a_segfault_mid_reply_is_a_typed_error_and_the_next_message_works(
    gemma_path: Path, tmp_path: Path
) -> None:
    platform = platform_in(tmp_path)
    session = platform.session(gemma_schema(gemma_path, max_tokens=200, temperature=0.8))
    session.context.append_user(STORY)
    pieces: list[str] = []
    with pytest.raises(EngineCrashedError) as caught:
        async for piece in session.generate():
            pieces.append(piece)
            if len(pieces) == 3:
                assert session.engine is not None
                crashed_pid = session.engine.pid
                os.kill(crashed_pid, signal.SIGSEGV)
    error = caught.value
    assert "SIGSEGV (segmentation fault)" in error.reason
    assert f"pid {crashed_pid}" in error.reason and "while it generated" in error.reason
    assert "fresh engine" in error.suggestion
    assert session.state is LLMState.ERROR and session.error is error
    # The question and what arrived before the crash are kept, marked as cut off.
    question, partial = session.context[-2], session.context[-1]
    assert question.role is Role.USER and question.content == STORY
    assert partial.role is Role.ASSISTANT and partial.content == "".join(pieces)
    assert not partial.complete and partial.finish_reason == "error"

    # The next message starts a fresh engine and is answered.
    session.context.append_user("And then?")
    reply = "".join([piece async for piece in session.generate()])
    assert reply and session.state is LLMState.READY
    assert session.engine is not None and session.engine.pid != crashed_pid
    await platform.aclose()


@pytestmark_slow
async def test_the_engine_killed_while_idle_is_replaced_without_an_error(
    gemma_path: Path, tmp_path: Path
) -> None:
    platform = platform_in(tmp_path)
    session = platform.session(gemma_schema(gemma_path, max_tokens=3))
    session.context.append_user("Hello")
    assert "".join([p async for p in session.generate()])
    assert session.engine is not None
    first = session.engine.pid
    os.kill(first, signal.SIGKILL)  # what the out-of-memory killer does
    assert await asyncio.to_thread(gone, first)
    session.context.append_user("Hello again")
    assert "".join([p async for p in session.generate()])
    assert session.engine.pid != first
    await platform.aclose()


@pytestmark_slow
async def test_a_crash_while_loading_is_retried_once_in_safe_mode_and_remembered(
    gemma_path: Path, tmp_path: Path
) -> None:
    platform = platform_in(tmp_path)
    session = platform.session(gemma_schema(gemma_path, max_tokens=3))
    session.context.append_user("Hello")
    task = asyncio.ensure_future(_collect(session.stream()))
    # Kill the first engine before it has loaded the model.
    for _ in range(2000):
        if platform.processes:
            break
        await asyncio.sleep(0.005)
    [first] = platform.processes
    os.kill(first, signal.SIGSEGV)
    events = await task

    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "safe mode" in notices[0] and "SIGSEGV" in notices[0]
    assert any(isinstance(e, TextDelta) for e in events)
    engine = session.engine
    assert engine is not None and engine.pid != first
    assert engine.info is not None and not engine.info.extra_buffers
    assert platform.safe_mode.is_safe_only(gemma_path)
    await platform.aclose()

    # The next load of that model is safe from the start, with no retry and no notice.
    again = platform_in(tmp_path)
    later = again.session(gemma_schema(gemma_path, max_tokens=3))
    later.context.append_user("Hello")
    events = await _collect(later.stream())
    assert not any(isinstance(e, Notice) for e in events)
    assert later.engine is not None and later.engine.info is not None
    assert not later.engine.info.extra_buffers
    await again.aclose()


@pytestmark_slow
async def test_a_crash_in_the_first_reply_before_any_token(
    gemma_path: Path, tmp_path: Path
) -> None:
    platform = platform_in(tmp_path)
    schema = gemma_schema(gemma_path, max_tokens=3, n_ctx=2048)
    engine = await asyncio.to_thread(platform.engine, schema)
    assert engine.info is not None
    session = platform.session(schema)
    # A long prompt keeps the engine busy evaluating it for a while before the first token.
    session.context.append_user("Tell me about teapots. " * 250)
    task = asyncio.ensure_future(_collect(session.stream()))
    while not engine.busy.locked():
        await asyncio.sleep(0.001)
    os.kill(engine.pid, signal.SIGSEGV)
    if engine.info.extra_buffers:
        # "auto" with the extra buffer types on: taken as theirs, retried in safe mode.
        events = await task
        assert any(isinstance(e, Notice) and "safe mode" in e.text for e in events)
        assert session.engine is not None and session.engine.info is not None
        assert not session.engine.info.extra_buffers
        assert platform.safe_mode.is_safe_only(gemma_path)
    else:
        # Already in safe mode (an AMX CPU): nothing else to try, the crash is reported.
        with pytest.raises(EngineCrashedError) as caught:
            await task
        assert "SIGSEGV" in caught.value.reason
    await platform.aclose()


@pytestmark_slow
@pytest.mark.skipif(not cpu_has_amx(), reason="llama.cpp's AMX crash needs an AMX CPU")
async def test_on_an_amx_cpu_auto_is_safe_and_forcing_the_buffers_on_crashes(
    gemma_path: Path, tmp_path: Path
) -> None:
    if not await asyncio.to_thread(build_uses_amx):
        pytest.skip("this llama.cpp build has no AMX kernels")
    platform = platform_in(tmp_path)
    forced = platform.session(gemma_schema(gemma_path, cpu_extra_buffers="on", max_tokens=8))
    forced.context.append_user("The capital of France is")
    try:
        reply = "".join([p async for p in forced.generate()])
    except EngineCrashedError as error:
        # ggml-org/llama.cpp#20824: the AMX kernel's segmentation fault, caught.
        assert "SIGSEGV" in error.reason
    else:  # a build where the bug is fixed
        assert reply
    safe = platform.session(gemma_schema(gemma_path, max_tokens=8))
    safe.context.append_user("The capital of France is")
    assert "".join([p async for p in safe.generate()])
    assert safe.engine is not None and safe.engine.info is not None
    assert not safe.engine.info.extra_buffers
    assert "AMX" in safe.engine.info.extra_buffers_note
    await platform.aclose()


@pytestmark_slow
async def test_switching_models_ends_the_old_engine(gemma_path: Path, tmp_path: Path) -> None:
    platform = platform_in(tmp_path)
    first = await asyncio.to_thread(platform.engine, gemma_schema(gemma_path, n_ctx=256))
    second = await asyncio.to_thread(platform.engine, gemma_schema(gemma_path, n_ctx=128))
    assert first.pid != second.pid
    assert first.process.poll() is not None  # ended, its memory given back
    assert platform.loaded == (second,) and platform.processes == (second.pid,)
    await platform.aclose()
    assert second.process.poll() is not None and platform.processes == ()


@pytestmark_slow
async def test_a_load_error_ends_its_engine(gemma_path: Path, tmp_path: Path) -> None:
    platform = platform_in(tmp_path)
    session = platform.session(gemma_schema(gemma_path, n_ctx=65536))
    session.context.append_user("hi")
    with pytest.raises(ContextSizeError):
        await session.generate().__anext__()
    assert platform.processes == () and platform.loaded == ()


async def _collect(stream: object) -> list[object]:
    return [event async for event in stream]  # type: ignore[attr-defined]
