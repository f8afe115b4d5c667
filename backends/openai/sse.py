"""Reading one server-sent-events response of a streamed chat completion.

:class:`SSEReader` runs in its own task: it parses events as fast as the network delivers
them and buffers what they mean (text, usage); the client's stream hands out everything
buffered since it last ran, adjacent text merged into one TextDelta.

Events are parsed here from the raw bytes (:func:`data_events`), within the
:class:`~backends.openai.limits.Limits`: the body is decompressed a bounded piece at a
time, and a line or an event longer than ``max_event_bytes`` ends the stream with an
error instead of filling memory. Only ``data`` fields matter to chat completions; the
others (``event``, ``id``, ``retry``) and comments are skipped as the spec allows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import httpx

from backends.events import PlatformEvent, TextDelta
from backends.openai.chat import StreamAccumulator
from backends.openai.errors import APIErrorInfo
from backends.openai.limits import (
    IdleWatch,
    LimitExceeded,
    Limits,
    LineSplitter,
    Undecodable,
    decoded,
)

if TYPE_CHECKING:
    from backends.openai.errors import ErrorMapper


async def data_events(response: httpx.Response, limit: int) -> AsyncGenerator[str, None]:
    """The ``data`` of each event of an event stream (its data lines joined by newlines).

    Raises :class:`LimitExceeded` for a line or an event longer than ``limit`` bytes, and
    :class:`Undecodable` for a body that cannot be decompressed.
    """
    lines = LineSplitter(limit)
    data: list[bytes] = []
    size = 0
    body = decoded(response)
    try:
        async for piece in body:
            for line in lines.feed(piece):
                if not line:
                    if data:
                        yield b"\n".join(data).decode("utf-8", "replace")
                        data = []
                        size = 0
                    continue
                name, _, value = line.partition(b":")
                if name != b"data":
                    continue  # a comment (empty name), or a field chat completions ignore
                if value[:1] == b" ":
                    value = value[1:]
                size += len(value) + 1
                if size > limit:
                    raise LimitExceeded("an event of the stream", limit)
                data.append(value)
    finally:
        await body.aclose()


class SSEReader:
    """Reads one SSE response in its own task and buffers the resulting events."""

    def __init__(
        self,
        errors: ErrorMapper,
        response: httpx.Response,
        accumulator: StreamAccumulator,
        *,
        limits: Limits | None = None,
        watch: IdleWatch | None = None,
    ) -> None:
        self.errors = errors
        self.response = response
        self.accumulator = accumulator
        self.limits = limits or Limits()
        self.watch = watch
        """Told of each piece of content (for the idle timeout) and of the end."""
        self.ready = asyncio.Event()
        self.finished = False
        self.error: BaseException | None = None
        self._pending: list[PlatformEvent | str] = []

    def take(self) -> list[PlatformEvent]:
        """The buffered events, adjacent text (plain strings) merged into one TextDelta."""
        pending, self._pending = self._pending, []
        merged: list[PlatformEvent] = []
        texts: list[str] = []
        for event in pending:
            if isinstance(event, str):
                texts.append(event)
                continue
            if texts:
                merged.append(TextDelta("".join(texts), len(texts)))
                texts = []
            merged.append(event)
        if texts:
            merged.append(TextDelta("".join(texts), len(texts)))
        return merged

    async def run(self) -> None:
        errors = self.errors
        accumulator = self.accumulator
        watch = self.watch
        source = data_events(self.response, self.limits.max_event_bytes)
        done = False
        got_event = False
        try:
            try:
                async for data in source:
                    got_event = True
                    if data[:1] in ("[", "", " ", "\n"):
                        stripped = data.strip()
                        if stripped == "[DONE]":
                            done = True
                            break
                        if not stripped:
                            continue
                    try:
                        chunk = json.loads(data)
                    except ValueError as exc:
                        raise errors.bad_chunk(data) from exc
                    if type(chunk) is not dict:
                        raise errors.bad_chunk(data)
                    if "error" in chunk and not chunk.get("choices"):
                        info = APIErrorInfo.parse(chunk)
                        raise errors.stream_error(info, partial=accumulator.received_output)
                    pieces = accumulator.pieces
                    try:
                        accumulator.feed_into(chunk, self._pending)
                    except (AttributeError, TypeError, ValueError) as exc:
                        # JSON of the wrong shape (a string where an object belongs).
                        raise errors.bad_chunk(data) from exc
                    if watch is not None and accumulator.pieces != pieces:
                        watch.touch()
                    self.ready.set()
            except httpx.TransportError as exc:
                raise errors.transport_error(exc, partial=accumulator.received_output) from exc
            except LimitExceeded as exc:
                partial = accumulator.received_output
                raise errors.too_large(exc.what, exc.limit, partial=partial) from None
            except Undecodable as exc:
                raise errors.undecodable(str(exc), partial=accumulator.received_output) from None
            finally:
                await source.aclose()
            if not done and accumulator.finish_reason is None:
                received = self.response.num_bytes_downloaded
                if not got_event and received:
                    raise errors.no_events(received)
                raise errors.stream_cut(partial=accumulator.received_output)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
        finally:
            if watch is not None:
                watch.finish()
            self.finished = True
            self.ready.set()
