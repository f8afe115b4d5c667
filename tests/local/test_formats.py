"""The transcript chat format for base models: the prompt it writes, and a real reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.events import TextDelta, Usage
from backends.local.engine import known_chat_formats
from backends.local.formats import PREAMBLE, STOP, TRANSCRIPT, transcript_prompt
from backends.local.platform import LocalPlatform
from tests.local.conftest import gemma_schema


def test_the_transcript_holds_system_example_turns_and_the_cue() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "tool", "content": "21 degrees", "tool_call_id": "c1"},
        {"role": "assistant", "content": None},
        {
            "role": "user",
            "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "now?"}],
        },
    ]
    lines = transcript_prompt(messages).split("\n")
    assert lines[0] == f"{PREAMBLE} Be brief."
    assert lines[1] == ""
    assert lines[2].startswith("User: ") and lines[3].startswith("Assistant: ")  # the example
    assert lines[4:] == [
        "User: Hi there",
        "Assistant: Hello!",
        "Tool result: 21 degrees",
        "User: And now?",
        "Assistant:",
    ]
    assert all(stop.startswith("\n") for stop in STOP)


def test_the_format_is_known_to_llama_cpp() -> None:
    assert TRANSCRIPT in known_chat_formats()


@pytest.mark.slow
async def test_the_starter_answers_in_one_turn_and_stops(gemma_path: Path) -> None:
    # The starter's file carries no chat template: the catalog's format applies.
    platform = LocalPlatform()
    question = "What is the capital of France?"
    session = platform.session(gemma_schema(gemma_path, chat_format="", max_tokens=60))
    session.context.append_user(question)
    events = [event async for event in session.stream()]
    await platform.aclose()
    assert session.engine is not None and session.engine.info is not None
    assert session.engine.info.chat_format == TRANSCRIPT
    reply = "".join(event.text for event in events if isinstance(event, TextDelta))
    usage = next(event for event in events if isinstance(event, Usage))
    assert reply.strip() and reply == reply.lstrip()  # no space left from the cue
    assert question not in reply  # the failure of a chat template on a base model
    assert "User:" not in reply and "Assistant:" not in reply
    # It stopped where the next turn would begin, well before the token limit.
    assert usage.completion_tokens < 60
