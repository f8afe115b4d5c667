"""Reading one server-sent-events response of a streamed chat completion.

:class:`SSEReader` runs in its own task: it parses events with httpx-sse as fast as the
network delivers them and buffers what they mean (text, usage); the client's stream hands
out everything buffered since it last ran, adjacent text merged into one TextDelta.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx

from backends.events import PlatformEvent, TextDelta
from backends.openai.chat import StreamAccumulator
from backends.openai.errors import APIErrorInfo

if TYPE_CHECKING:
    from backends.openai.client import ErrorMapper


class SSEReader:
    """Reads one SSE response in its own task and buffers the resulting events."""

    def __init__(
        self,
        errors: ErrorMapper,
        response: httpx.Response,
        accumulator: StreamAccumulator,
    ) -> None:
        self.errors = errors
        self.response = response
        self.accumulator = accumulator
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
                merged.append(TextDelta("".join(texts)))
                texts = []
            merged.append(event)
        if texts:
            merged.append(TextDelta("".join(texts)))
        return merged

    async def run(self) -> None:
        from httpx_sse import EventSource

        errors = self.errors
        accumulator = self.accumulator
        source = EventSource(self.response).aiter_sse()
        done = False
        got_event = False
        try:
            try:
                async for sse in source:
                    got_event = True
                    data = sse.data
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
                    try:
                        accumulator.feed_into(chunk, self._pending)
                    except (AttributeError, TypeError, ValueError) as exc:
                        # JSON of the wrong shape (a string where an object belongs).
                        raise errors.bad_chunk(data) from exc
                    self.ready.set()
            except httpx.TransportError as exc:
                raise errors.transport_error(exc, partial=accumulator.received_output) from exc
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
            self.finished = True
            self.ready.set()
