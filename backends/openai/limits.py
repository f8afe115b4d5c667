"""Limits that keep a broken or hostile server from hanging spezichat or eating its memory.

:class:`Limits` holds them: how long a reply may go without new content (keep-alive
comments and single bytes do not count), how long one server-sent event may be, and how
much of a whole answer or an error body is read. The helpers here enforce them on the
raw bytes of an ``httpx`` response:

* :func:`decoded` undoes gzip or deflate itself, at most :data:`PIECE` bytes at a time,
  so that a small compressed body cannot expand into gigabytes in one step (httpx would
  decode each network read whole);
* :func:`read_limited` reads a whole body up to a limit and stops there;
* :class:`LineSplitter` cuts an event stream into lines and refuses one that grows past
  the limit before it ends;
* :class:`IdleWatch` stops a request once no new content arrived for a while, whatever
  the server keeps sending.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx

KIB = 1024
MIB = 1024 * KIB
PIECE = 64 * KIB
"""Most bytes one decompression step may produce."""
ACCEPT_ENCODING = "gzip, deflate"
"""The only content codings spezichat asks for (and can decode with a bounded output)."""


@dataclass(frozen=True)
class Limits:
    """How long and how much spezichat accepts from a server for one request."""

    idle_timeout: float = 120.0
    """Seconds a request may go without new content: text, a tool-call fragment, the
    finish or usage of a reply, or the whole answer of a non-streamed request.
    Keep-alive comments and a trickle of bytes do not count, unlike the per-read timeout."""
    max_event_bytes: int = 4 * MIB
    """Longest line, and longest event, of an event stream (one JSON chunk each)."""
    max_body_bytes: int = 16 * MIB
    """Largest whole answer read (a non-streamed reply, a model list), once decompressed."""
    max_error_bytes: int = 64 * KIB
    """Bytes of an error body read to describe the error; the rest is discarded."""

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0:
            raise ValueError(
                f"idle_timeout is {self.idle_timeout!r}; it must be a positive number of seconds."
            )
        for name in ("max_event_bytes", "max_body_bytes", "max_error_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 byte.")


def size_text(size: int) -> str:
    """``4194304`` -> ``"4 MiB"``; ``65536`` -> ``"64 KiB"``."""
    for unit, factor in (("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


class LimitExceeded(Exception):
    """A response is larger than a limit allows; ``what`` names the part."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} is larger than {size_text(limit)}")
        self.what = what
        self.limit = limit


class Undecodable(Exception):
    """The body's content coding is unknown, or its compressed data is damaged."""


def _decompressor(coding: str) -> Any:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped (or gzip) data
    raise Undecodable(
        f"the server compressed the body as {coding[:40]!r}, which spezichat did not ask for"
    )


def _codings(response: httpx.Response) -> list[str]:
    header = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


async def decoded(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body of a streamed ``response`` without its content coding, piece by piece.

    Raises :class:`Undecodable` for a coding other than gzip or deflate (the only ones
    requested, see :data:`ACCEPT_ENCODING`) and for damaged compressed data.
    """
    codings = _codings(response)
    if not codings:
        async for raw in response.aiter_raw():
            yield raw
        return
    if len(codings) > 1:
        raise Undecodable(f"the server compressed the body {len(codings)} times over")
    coding = codings[0]
    decompressor = _decompressor(coding)
    first = True
    async for raw in response.aiter_raw():
        data = raw
        while data and not decompressor.eof:
            try:
                out = decompressor.decompress(data, PIECE)
            except zlib.error as exc:
                if not (first and coding == "deflate"):
                    raise Undecodable(f"its {coding} data is damaged ({exc})") from None
                decompressor = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                first = False
                continue
            first = False
            data = decompressor.unconsumed_tail
            if out:
                yield out
            while len(out) == PIECE and not data and not decompressor.eof:
                out = decompressor.decompress(b"", PIECE)  # output still held back
                if out:
                    yield out


async def read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body (decoded) up to ``limit`` bytes, and whether there was more.

    Reading stops at the limit: the rest is never downloaded or decompressed.
    """
    parts: list[bytes] = []
    size = 0
    body = decoded(response)
    try:
        async for piece in body:
            if size + len(piece) > limit:
                parts.append(piece[: limit - size])
                return b"".join(parts), True
            parts.append(piece)
            size += len(piece)
    finally:
        await body.aclose()
    return b"".join(parts), False


class LineSplitter:
    """Cuts bytes into the lines of an event stream (ended by CRLF, LF or CR).

    A line that grows past ``limit`` bytes raises :class:`LimitExceeded` as soon as
    that is known, so no more than about ``limit`` bytes are ever held. The unfinished
    line is kept in parts, joined once it ends: a line sent a byte at a time costs no
    more than one sent whole.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._skip_lf = False

    def feed(self, data: bytes) -> list[bytes]:
        """The lines completed by ``data`` (without their line ends)."""
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._skip_lf = data[-1:] == b"\r"  # its LF may come with the next piece
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in data:
            if data:
                self._parts.append(data)
                self._size += len(data)
                if self._size > self.limit:
                    raise LimitExceeded("a line of the event stream", self.limit)
            return []
        lines = data.split(b"\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
        tail = lines.pop()
        self._parts = [tail] if tail else []
        self._size = len(tail)
        longest = len(lines[0])
        if len(data) > self.limit:
            longest = max(longest, self._size, *map(len, lines))
        if longest > self.limit:
            raise LimitExceeded("a line of the event stream", self.limit)
        return lines


class IdleWatch:
    """Sets :attr:`stop` once no content arrived for ``seconds``, or when ``cancel`` is set.

    Use as ``async with``; call :meth:`touch` whenever content arrives and :meth:`finish`
    once the reply is complete. :attr:`fired` says whether the idle limit set ``stop``.
    """

    def __init__(self, seconds: float, cancel: asyncio.Event | None) -> None:
        self.seconds = seconds
        self.stop = asyncio.Event()
        self.fired = False
        self._cancel = cancel
        self._last = 0.0
        self._done = False
        self._tasks: list[asyncio.Future[Any]] = []

    def touch(self) -> None:
        """New content arrived: the idle time starts again."""
        self._last = asyncio.get_running_loop().time()

    def finish(self) -> None:
        """The reply is complete: the limit no longer applies."""
        self._done = True

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._done:
            left = self._last + self.seconds - loop.time()
            if left <= 0:
                self.fired = True
                self.stop.set()
                return
            await asyncio.sleep(left)

    def _cancelled(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.cancelled():
            self.stop.set()

    async def __aenter__(self) -> IdleWatch:
        self.touch()
        cancel = self._cancel
        if cancel is not None:
            if cancel.is_set():
                self.stop.set()
            else:
                waiter = asyncio.ensure_future(cancel.wait())
                waiter.add_done_callback(self._cancelled)
                self._tasks.append(waiter)
        self._tasks.append(asyncio.ensure_future(self._watch()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done = True
        for task in self._tasks:
            task.cancel()  # not awaited: that could swallow a cancel of the caller
