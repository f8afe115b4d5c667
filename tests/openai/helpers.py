"""Helpers shared by the OpenAI backend tests and the fault tests."""

from __future__ import annotations

from typing import Any

from backends.errors import LLMError
from backends.openai import OpenAIPlatform, OpenAISchema, OpenAISession


def new_session(platform: OpenAIPlatform, **schema: Any) -> OpenAISession:
    """A session for model "gpt-test" (no access check unless asked) with one question."""
    schema.setdefault("test_model_access", False)
    session = platform.session(OpenAISchema(model="gpt-test", **schema))
    session.context.append_user("Hello?")
    return session


async def collect(session: OpenAISession) -> tuple[list[object], LLMError | None]:
    """Every event of one generation, and the error that ended it (if any)."""
    events: list[object] = []
    try:
        async for event in session.stream():
            events.append(event)
    except LLMError as error:
        return events, error
    return events, None
