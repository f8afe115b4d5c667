"""A chat format for base models: the conversation written out as a plain transcript.

A base model (pretrained, not instruction-tuned) has never seen a chat template. Given
one anyway it tends to repeat the user's message and drift into stray tokens: with
Gemma's template the offline starter answered "What is the capital of France?" with
the question again followed by "mendatang", over and over. Written as a transcript that
opens with one example exchange, the same model answers "The capital of France is
Paris." and stops where the user's next line would start.

``chat_format = "transcript"`` (the catalog sets it for the starter) selects it; it is
registered with llama-cpp-python's own chat-format registry when a model is loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

TRANSCRIPT = "transcript"
"""The name of the format, as ``local.chat_format`` and the catalog spell it."""

PREAMBLE = (
    "A conversation between a user and a helpful, knowledgeable assistant. "
    "The assistant answers in full sentences."
)
EXAMPLE = (
    ("User", "What is the boiling point of water?"),
    ("Assistant", "Water boils at 100 degrees Celsius (212 degrees Fahrenheit) at sea level."),
)
"""One exchange before the real one shows a base model the shape of an answer."""

STOP = ["\nUser:", "\nAssistant:"]
"""Where the model starts writing the next turn itself: the answer ends there."""

TOOL_CHAT_FORMATS = ("chatml-function-calling", "functionary", "functionary-v1", "functionary-v2")
"""llama-cpp-python chat formats that parse tool calls themselves."""

_SPEAKERS = {"user": "User", "assistant": "Assistant", "tool": "Tool result"}


def _text(content: Any) -> str:
    """The text of a message's content (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def transcript_prompt(messages: Iterable[Mapping[str, Any]]) -> str:
    """The prompt for ``messages`` (OpenAI-style dicts): preamble, example, turns, cue."""
    messages = list(messages)
    system = [_text(m.get("content")).strip() for m in messages if m.get("role") == "system"]
    head = " ".join([PREAMBLE, *(text for text in system if text)])
    lines = [head, ""]
    lines += [f"{speaker}: {text}" for speaker, text in EXAMPLE]
    for message in messages:
        speaker = _SPEAKERS.get(str(message.get("role")))
        text = _text(message.get("content")).strip()
        if speaker is not None and text:
            lines.append(f"{speaker}: {text}")
    lines.append("Assistant:")
    return "\n".join(lines)


def register_formats() -> None:
    """Make ``transcript`` known to llama-cpp-python (idempotent; imports llama_cpp)."""
    from llama_cpp import llama_chat_format

    def formatter(messages: list[Any], **kwargs: Any) -> Any:
        return llama_chat_format.ChatFormatterResponse(
            prompt=transcript_prompt(messages), stop=list(STOP)
        )

    with contextlib.suppress(ValueError):  # registered already
        llama_chat_format.register_chat_format(TRANSCRIPT)(formatter)


__all__ = [
    "PREAMBLE",
    "STOP",
    "TOOL_CHAT_FORMATS",
    "TRANSCRIPT",
    "register_formats",
    "transcript_prompt",
]
