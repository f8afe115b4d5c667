"""The plain parts of :mod:`backends.openai.client`: retry policy, model info, cancellable
waits and the reading of error bodies and non-streamed replies.

Split from :mod:`backends.openai.client`, which re-exports :class:`RetryPolicy` and
:class:`ModelInfo`; nothing here imports that module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from backends.errors import LLMError
from backends.events import PlatformEvent
from backends.openai.chat import StreamAccumulator
from backends.openai.errors import APIErrorInfo, ErrorMapper


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry requests that failed before any output arrived."""

    max_attempts: int = 3
    """Attempts in total, the first included (1 disables retrying)."""
    base_delay: float = 0.5
    """Wait before the first retry when the server names none; doubles each time."""
    max_delay: float = 8.0
    """Longest wait between attempts that spezichat picks by itself."""
    max_retry_after: float = 30.0
    """Longest server-requested wait (Retry-After) honoured; longer ones end the request."""

    def delay(self, attempt: int, error: LLMError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
        if attempt >= self.max_attempts or not getattr(error, "retryable", False):
            return None
        requested = getattr(error, "retry_after", None)
        if isinstance(requested, (int, float)):
            wait = max(0.0, float(requested))
            return wait if wait <= self.max_retry_after else None
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ModelInfo:
    """A model the server offers (the spec's Model object)."""

    id: str
    created: int | None = None
    owned_by: str | None = None

    @classmethod
    def parse(cls, data: Any) -> ModelInfo | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            return None
        created = data.get("created")
        owner = data.get("owned_by")
        return cls(
            id=data["id"],
            created=created if isinstance(created, int) else None,
            owned_by=owner if isinstance(owner, str) else None,
        )


class Stopped(Exception):
    """The caller cancelled while we waited for the server."""


T = TypeVar("T")


async def until_cancelled(step: Awaitable[T], cancel: asyncio.Event | None) -> T:
    """Await ``step`` unless ``cancel`` is set first (then raise :class:`Stopped`)."""
    if cancel is None:
        return await step
    if cancel.is_set():
        if asyncio.iscoroutine(step):
            step.close()
        raise Stopped
    task = asyncio.ensure_future(step)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise Stopped


def error_info(raw: bytes, status: int) -> APIErrorInfo:
    fallback = f"HTTP {status}"
    text = raw.decode("utf-8", "replace")
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = text
    return APIErrorInfo.parse(payload, fallback)


def whole_reply(
    raw: bytes, accumulator: StreamAccumulator, errors: ErrorMapper
) -> list[PlatformEvent]:
    """Events of a non-streamed ChatCompletion answer."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise errors.bad_chunk(text) from exc
    if not isinstance(data, Mapping):
        raise errors.bad_chunk(text)
    try:
        choices = [
            {**choice, "delta": choice.get("message") or {}}
            for choice in data.get("choices") or ()
            if isinstance(choice, Mapping)
        ]
        events = accumulator.feed({"choices": choices, "usage": data.get("usage")})
    except (AttributeError, TypeError, ValueError) as exc:
        # JSON of the wrong shape (a string where an object belongs).
        raise errors.bad_chunk(text) from exc
    return [*events, *accumulator.finish()]
