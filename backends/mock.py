"""A scriptable mock model for demos, screenshots and tests.

By default it streams a short Markdown reply word by word. A script of responses makes it
answer differently each turn, request function calls, or fail::

    MockSchema(responses=(
        MockResponse(tool_calls=(("get_weather", {"city": "Berlin"}),)),
        MockResponse(text="It is sunny in Berlin."),
    ))
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from backends.context import Context, Role, ToolCall
from backends.errors import LLMError
from backends.events import PlatformEvent, TextDelta, ToolCallsDone, Usage
from backends.session import Platform, Schema, Session

DEFAULT_REPLY = (
    "Hello from the **spezichat** mock model! I stream a fixed reply so you can try the "
    "interface without an account or a network.\n\n"
    "```python\nprint('hello, terminal')\n```\n"
)


@dataclass(frozen=True)
class MockResponse:
    """One scripted turn: text, function calls (name and arguments), or an error."""

    text: str = ""
    tool_calls: tuple[tuple[str, Mapping[str, Any] | str], ...] = ()
    error: LLMError | None = None


@dataclass(frozen=True, kw_only=True)
class MockSchema(Schema):
    """Configuration of the mock model."""

    model: str = "mock"
    """Shown as the model name."""
    responses: tuple[MockResponse | str, ...] = ()
    """Scripted turns, used in order; the last one repeats. Empty: the default reply."""
    delay: float = 0.02
    """Seconds between two streamed pieces."""
    echo: bool = False
    """Reply with the last user message instead of the script."""


class MockPlatform(Platform[MockSchema]):
    """Runs :class:`MockSchema` sessions."""

    name = "mock"
    schema_type = MockSchema

    def session(self, schema: MockSchema, context: Context | None = None) -> MockSession:
        return MockSession(self, schema, context)


def split_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces, the way tokens arrive from a real model."""
    return re.findall(r"\s*\S+|\s+", text)


class MockSession(Session[MockSchema]):
    """Streams the scripted responses."""

    def __init__(
        self, platform: MockPlatform, schema: MockSchema, context: Context | None = None
    ) -> None:
        super().__init__(platform, schema, context)
        self.turn = 0

    def _next_response(self, context: Context) -> MockResponse:
        if self.schema.echo:
            user = context.last(Role.USER)
            return MockResponse(text=user.content if user else "")
        script = self.schema.responses
        if not script:
            return MockResponse(text=DEFAULT_REPLY)
        item = script[min(self.turn, len(script) - 1)]
        self.turn += 1
        return MockResponse(text=item) if isinstance(item, str) else item

    async def _generate_once(self, context: Context) -> AsyncIterator[PlatformEvent]:
        response = self._next_response(context)
        pieces = split_pieces(response.text)
        for piece in pieces:
            if self.schema.delay > 0:
                await asyncio.sleep(self.schema.delay)
            else:
                await asyncio.sleep(0)
            yield TextDelta(piece)
        if response.error is not None:
            raise response.error
        prompt_tokens = sum(len(split_pieces(e.content)) for e in context)
        yield Usage(prompt_tokens, len(pieces), prompt_tokens + len(pieces))
        if response.tool_calls:
            calls = tuple(
                ToolCall(
                    id=f"call_{self.turn}_{index}",
                    name=name,
                    arguments=args if isinstance(args, str) else json.dumps(dict(args)),
                )
                for index, (name, args) in enumerate(response.tool_calls)
            )
            yield ToolCallsDone(calls)
