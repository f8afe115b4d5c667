"""The loaded model and fitting a conversation into its context window.

Split from :mod:`backends.local.engine` (which runs in the engine's child process and
re-exports these names); nothing here imports llama_cpp.
"""

from __future__ import annotations

import json
from typing import Any

from backends.local.errors import PromptTooLongError

MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds around each message (role markers), generously counted."""


class Model:
    """The loaded model and what the app needs to know about it."""

    def __init__(self, llama: Any, info: dict[str, Any]) -> None:
        self.llama = llama
        self.info = info

    @property
    def n_ctx(self) -> int:
        return int(self.info["n_ctx"])

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def fit_messages(
    model: Model,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    reserve: int,
) -> tuple[list[dict[str, Any]], int]:
    """Leave out the oldest non-system messages until the prompt fits the context window.

    Returns the messages to send and how many were left out.
    """
    counts = [model.count_tokens(message_text(message)) + MESSAGE_OVERHEAD for message in messages]
    fixed = model.count_tokens(json.dumps(tools)) if tools else 0
    budget = model.n_ctx - reserve - fixed
    total = sum(counts)
    if total <= budget:
        return messages, 0
    system = [i for i, m in enumerate(messages) if m["role"] == "system"]
    others = [i for i, m in enumerate(messages) if m["role"] != "system"]
    dropped = 0
    while total > budget and len(others) > 1:
        total -= counts[others.pop(0)]
        dropped += 1
        # A conversation must start with a user turn: drop orphaned replies and results.
        while len(others) > 1 and messages[others[0]]["role"] != "user":
            total -= counts[others.pop(0)]
            dropped += 1
    if total > budget:
        raise PromptTooLongError(
            reason=(
                f"The system prompt and the last message take about {total + fixed} tokens; "
                f"the context window holds {model.n_ctx}, with {reserve} kept for the reply."
            ),
        )
    return [messages[i] for i in sorted(system + others)], dropped


def message_text(message: dict[str, Any]) -> str:
    text = message.get("content") or ""
    calls = message.get("tool_calls")
    return text + json.dumps(calls) if calls else text
