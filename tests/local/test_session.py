"""Real llama.cpp inference on the Gemma 3 270M package: streaming, states, cancel,
context trimming, shared model, and the typed errors of loading and generating."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from backends.context import Role
from backends.errors import ConfigurationError
from backends.events import Notice, StateChanged, TextDelta, Usage
from backends.functions import llm_function
from backends.local.errors import (
    ChatTemplateMissingError,
    ContextSizeError,
    CorruptModelError,
    ModelNotFoundError,
    PromptTooLongError,
    ToolsUnsupportedError,
)
from backends.local.models import ModelStore
from backends.local.platform import LocalPlatform, gpu_offload_supported
from backends.runner import Runner
from backends.state import LLMState
from tests.local.conftest import gemma_schema
from tui.advice import cli_advice

pytestmark = pytest.mark.slow


async def test_streams_tokens_through_the_states(
    gemma_platform: LocalPlatform, gemma_path: Path
) -> None:
    session = gemma_platform.session(gemma_schema(gemma_path, max_tokens=6))
    session.context.append_user("The capital of France is")

    events = [event async for event in session.stream()]

    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == [LLMState.LOADING, LLMState.GENERATING, LLMState.READY]
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert 1 <= len(pieces) <= 6 and "".join(pieces).strip()
    [usage] = [e for e in events if isinstance(e, Usage)]
    assert usage.completion_tokens == len(pieces) and usage.prompt_tokens > 5
    reply = session.context[-1]
    assert reply.role is Role.ASSISTANT and reply.complete
    assert reply.content == "".join(pieces)
    # The model was loaded once by the fixture and is shared, not loaded again.
    assert session.engine is gemma_platform.loaded[0]


async def test_same_seed_gives_the_same_reply(
    gemma_platform: LocalPlatform, gemma_path: Path
) -> None:
    schema = gemma_schema(gemma_path, temperature=0.9, seed=123)
    replies = []
    for _ in range(2):
        session = gemma_platform.session(schema)
        session.context.append_user("Once upon a time")
        replies.append("".join([p async for p in session.generate()]))
    assert replies[0] == replies[1] and replies[0]


async def test_cancel_stops_between_tokens(gemma_platform: LocalPlatform, gemma_path: Path) -> None:
    session = gemma_platform.session(gemma_schema(gemma_path, max_tokens=200))
    session.context.append_user("Write a long story about a dragon.")
    pieces = []
    async for piece in session.generate():
        pieces.append(piece)
        if len(pieces) == 3:
            session.cancel()
    assert len(pieces) == 3
    reply = session.context[-1]
    assert not reply.complete and reply.finish_reason == "stopped"
    assert session.state is LLMState.READY
    # The model is free again: the next request runs normally.
    after = gemma_platform.session(gemma_schema(gemma_path, max_tokens=3))
    after.context.append_user("Hello")
    assert "".join([p async for p in after.generate()])


async def test_concurrent_sessions_share_one_context_serially(
    gemma_platform: LocalPlatform, gemma_path: Path
) -> None:
    async def ask(prompt: str) -> str:
        session = gemma_platform.session(gemma_schema(gemma_path, max_tokens=5))
        session.context.append_user(prompt)
        return "".join([p async for p in session.generate()])

    alone = await ask("Tell me about the sea.")
    together = await asyncio.gather(ask("Tell me about the sea."), ask("Name a colour."))

    # Serialized on one llama context, neither interferes with the other.
    assert together[0] == alone and together[1]
    assert len(gemma_platform.loaded) == 1


async def test_long_conversation_is_trimmed_with_a_notice(gemma_path: Path) -> None:
    platform = LocalPlatform()  # a small window of its own, so the prompt stays short
    session = platform.session(gemma_schema(gemma_path, n_ctx=192, max_tokens=4))
    filler = "The quick brown fox jumps over the lazy dog. " * 4  # ~40 tokens
    for turn in range(6):
        session.context.append_user(f"Note {turn}: {filler}")
        session.context.append_assistant("Noted.", complete=True)
    session.context.append_user("What was the last note?")

    events = [event async for event in session.stream()]

    [notice] = [e for e in events if isinstance(e, Notice)]
    assert "192-token context window" in notice.text and "oldest" in notice.text
    assert any(isinstance(e, TextDelta) for e in events)
    [usage] = [e for e in events if isinstance(e, Usage)]
    assert usage.prompt_tokens < 192 - 4
    # Nothing was removed from the conversation itself.
    assert len([e for e in session.context if e.role is Role.USER]) == 7
    await platform.aclose()


async def test_message_longer_than_the_window_is_a_clear_error(
    gemma_platform: LocalPlatform, gemma_path: Path
) -> None:
    session = gemma_platform.session(gemma_schema(gemma_path))
    session.context.append_user("word " * 2000)

    with pytest.raises(PromptTooLongError) as caught:
        await session.generate().__anext__()

    assert "512" in caught.value.reason
    assert session.state is LLMState.ERROR
    assert session.context[-1].role is Role.USER  # the message is kept


async def test_tools_on_a_template_without_tool_support(
    gemma_platform: LocalPlatform, gemma_path: Path
) -> None:
    @llm_function
    def get_time() -> str:
        """Tell the time."""
        return "noon"

    session = gemma_platform.session(gemma_schema(gemma_path, functions=(get_time,)))
    session.context.append_user("What time is it?")

    with pytest.raises(ToolsUnsupportedError) as caught:
        await session.generate().__anext__()
    assert "gemma" in caught.value.reason


# Loading errors (each loads nothing or fails before generating) --------------------------
async def _first_error(platform: LocalPlatform, **overrides: object) -> BaseException:
    schema = gemma_schema(Path("unused"), **overrides)
    async with Runner([platform]) as runner:
        session = runner.session(schema)
        session.context.append_user("hi")
        with pytest.raises(Exception) as caught:
            await session.generate().__anext__()
        assert session.state is LLMState.ERROR
    return caught.value


async def test_model_without_chat_template_needs_a_format(gemma_path: Path, tmp_path: Path) -> None:
    # A GGUF the catalog does not know, with no template in its metadata.
    unknown = tmp_path / "mystery-model.gguf"
    unknown.symlink_to(gemma_path)
    error = await _first_error(LocalPlatform(), model=str(unknown), chat_format="")
    assert isinstance(error, ChatTemplateMissingError)
    assert "chat_format" in error.suggestion and "mystery-model.gguf" in error.reason


async def test_catalog_file_without_template_uses_the_catalog_format(
    gemma_path: Path,
) -> None:
    # The starter's own file name: the catalog says it needs the "transcript" format.
    platform = LocalPlatform()
    session = platform.session(gemma_schema(gemma_path, chat_format="", max_tokens=2))
    session.context.append_user("Hi")
    assert "".join([p async for p in session.generate()])
    engine = session.engine
    assert engine is not None and engine.info is not None
    assert engine.info.chat_format == "transcript"
    await platform.aclose()
    # Unloading ends the engine process.
    assert not engine.alive and engine.process.returncode is not None


async def test_unknown_chat_format(gemma_path: Path) -> None:
    error = await _first_error(LocalPlatform(), model=str(gemma_path), chat_format="klingon")
    assert isinstance(error, ConfigurationError) and "chatml" in error.reason


async def test_context_larger_than_trained(gemma_path: Path) -> None:
    error = await _first_error(LocalPlatform(), model=str(gemma_path), n_ctx=65536)
    assert isinstance(error, ContextSizeError)
    assert "32768" in error.reason and "65536" in error.reason


async def test_missing_file_and_not_downloaded_model(tmp_path: Path) -> None:
    platform = LocalPlatform(store=ModelStore(tmp_path / "models"))
    missing = await _first_error(platform, model=str(tmp_path / "absent.gguf"))
    assert isinstance(missing, ModelNotFoundError) and "absent.gguf" in missing.reason
    not_downloaded = await _first_error(platform, model="qwen2.5-0.5b")
    assert isinstance(not_downloaded, ModelNotFoundError)
    assert "spezichat" not in not_downloaded.suggestion
    assert "spezichat download qwen2.5-0.5b" in cli_advice(not_downloaded)


async def test_truncated_and_foreign_files(gemma_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with gemma_path.open("rb") as source, truncated.open("wb") as out:
        out.write(source.read(gemma_path.stat().st_size // 2))
    error = await _first_error(LocalPlatform(), model=str(truncated))
    assert isinstance(error, CorruptModelError)
    assert "not within the file bounds" in error.reason and "download" in error.suggestion

    html = tmp_path / "page.gguf"
    html.write_text("<!doctype html><title>Sign in</title>")
    foreign = await _first_error(LocalPlatform(), model=str(html))
    assert isinstance(foreign, CorruptModelError) and "GGUF signature" in foreign.reason


def test_gpu_layers_default_follows_the_build(gemma_path: Path) -> None:
    platform = LocalPlatform()
    model = platform.engine(gemma_schema(gemma_path, n_ctx=128)).info
    assert model is not None and model.n_gpu_layers == (-1 if gpu_offload_supported() else 0)
    other = LocalPlatform()
    explicit = other.engine(gemma_schema(gemma_path, n_ctx=128, n_gpu_layers=0)).info
    assert explicit is not None
    assert explicit.n_gpu_layers == 0 and explicit.n_ctx == 128 and model.n_ctx_train == 32768
    platform.unload_all()
    other.unload_all()


async def test_starter_is_assembled_from_the_package_without_network(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    platform = LocalPlatform(store=store)
    session = platform.session(gemma_schema(Path("x"), model="gemma3-270m-starter", max_tokens=2))
    session.context.append_user("Hello")
    assert "".join([p async for p in session.generate()])
    assert session.engine is not None and session.engine.path == store.starter_path()
    assert [m.name for m in store.installed()] == ["gemma3-270m-starter"]
    await platform.aclose()
    shutil.rmtree(tmp_path / "models")
