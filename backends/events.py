"""Typed events a session emits while it generates.

``Session.stream()`` yields these; ``Session.generate()`` yields only the text of
:class:`TextDelta` events. The UI uses the full stream to show tool calls, usage and
state changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.context import ToolCall
from backends.state import LLMState


@dataclass(frozen=True)
class TextDelta:
    """A piece of assistant text as it arrived."""

    text: str
    chunks: int = 1
    """How many pieces of the stream (about one token each) the text joins."""


@dataclass(frozen=True)
class ToolCallRequested:
    """The model asked for a function call; it runs after the approval callback says yes."""

    call: ToolCall


@dataclass(frozen=True)
class ToolCallResult:
    """The outcome of one function call, as it is handed back to the model."""

    call: ToolCall
    content: str
    is_error: bool
    approved: bool


@dataclass(frozen=True)
class Usage:
    """Token usage of one model request, when the backend reports it."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class StateChanged:
    """The session moved to a new state."""

    state: LLMState


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error (for example context trimming)."""

    text: str


@dataclass(frozen=True)
class ToolCallsDone:
    """Emitted by a platform at the end of one request that ended with tool calls.

    Internal to the tool loop: :class:`backends.session.Session` consumes it.
    """

    calls: tuple[ToolCall, ...]


Event = TextDelta | ToolCallRequested | ToolCallResult | Usage | StateChanged | Notice
PlatformEvent = TextDelta | Usage | Notice | ToolCallsDone
