"""Limits (issue 13): servers that keep a reply alive forever or send too much.

Real loopback sockets (:mod:`tests.faults.raw_server`) send what a broken or hostile
server would: keep-alive comments or single bytes forever, a 300 MB line, an endless
event, a 200 MB error body, gzip bombs. Bodies are generated lazily, a piece at a time,
so a test never builds them in memory; the client runs in a child process where it
counts, and its peak memory is checked against a bound. Token commands that hang are
real shell processes whose process ids are checked afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.events import TextDelta
from backends.fog.auth import CommandToken
from backends.fog.client import node_client, probe
from backends.fog.config import FogConfig
from backends.fog.errors import FogIdleTimeoutError, FogTokenError
from backends.openai import OpenAIPlatform, RetryPolicy
from backends.openai.errors import IdleTimeoutError, StreamFormatError
from backends.openai.limits import LimitExceeded, LineSplitter
from tests.faults.raw_server import RawReply, RawServer, chunk, sse
from tests.openai.helpers import collect, new_session
from tui.advice import cli_advice

KEY = "sk-test-key"
ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
IDLE = 0.5
"""The idle timeout of these tests, in seconds; servers send a beat every 50 ms."""
HANG_GUARD = 60
"""Seconds after which a test that hangs fails instead (the code before the fix hung)."""


@pytest.fixture
def raw() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """Ends the endless bodies of a test when it is over."""
    event = threading.Event()
    yield event
    event.set()


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# Bodies, generated as the server sends them ---------------------------------------------------
def beats(stop: threading.Event, first: Iterable[bytes], beat: bytes) -> Iterator[bytes]:
    """``first``, then ``beat`` every 50 ms until the test ends (or the client hangs up)."""
    yield from first
    while not stop.wait(0.05):
        yield beat


def trickle(stop: threading.Event, first: Iterable[bytes], data: bytes) -> Iterator[bytes]:
    """``first``, then ``data`` repeated forever, one byte every 50 ms."""
    yield from first
    while True:
        for byte in data:
            if stop.wait(0.05):
                return
            yield bytes([byte])


def repeated(start: bytes, filler: bytes, total: int) -> Iterator[bytes]:
    """``start``, then ``filler`` up to ``total`` bytes, in 1 MiB pieces."""
    if start:
        yield start  # (an empty chunk would end a chunked body)
    block = filler * (MiB // len(filler))
    for _ in range(total // len(block)):
        yield block


def gzipped(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``pieces`` compressed as one gzip stream, as it goes (a bomb stays small)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    for piece in pieces:
        yield compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()


# The client in a child process, so that its peak memory can be measured -----------------------
CLIENT = r"""
import asyncio, json, resource, sys
from backends.errors import LLMError
from backends.openai import OpenAIPlatform, OpenAISchema, RetryPolicy

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

async def main(url):
    retry = RetryPolicy(max_attempts=1)
    platform = OpenAIPlatform(base_url=url, api_key="sk-test-key", retry=retry)
    session = platform.session(OpenAISchema(model="gpt-test", test_model_access=False))
    session.context.append_user("Hello?")
    before = peak_kib()
    text, error = [], None
    try:
        async for event in session.stream():
            text.append(getattr(event, "text", "") if type(event).__name__ == "TextDelta" else "")
    except LLMError as exc:
        error = exc
    await platform.aclose()
    print(json.dumps({
        "error": type(error).__name__ if error else None,
        "description": error.description if error else None,
        "reason": error.reason if error else None,
        "suggestion": error.suggestion if error else None,
        "text": "".join(text),
        "grew_mib": (peak_kib() - before) / 1024,
    }))

asyncio.run(main(sys.argv[1]))
"""

BOUND_MIB = 96
"""Most the client's peak memory may grow while reading one oversized answer (the limits
hold 4 MiB lines, 16 MiB answers and 64 KiB error bodies; the code before the fix grew by
0.3 to 1 GiB)."""


def run_client(raw: RawServer) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, raw.base_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# Too much: lines, events, error bodies, gzip bombs --------------------------------------------
def test_a_300_mb_line_ends_the_reply_with_bounded_memory(raw: RawServer) -> None:
    huge = repeated(b"data: ", b"x", 300 * MiB)
    raw.script(RawReply(_chain(sse(chunk("Before ")), huge)))
    result = run_client(raw)
    assert result["grew_mib"] < BOUND_MIB, result
    assert result["error"] == "ResponseTooLargeError"
    assert result["description"] == "The server sent more than spezichat accepts."
    assert "a line of the event stream larger than 4 MiB" in result["reason"]
    assert "partial reply is kept" in result["suggestion"]
    assert result["text"] == "Before "


def test_an_endless_event_of_short_lines_ends_with_bounded_memory(raw: RawServer) -> None:
    lines = repeated(b"", b"data: " + b"y" * 58 + b"\n", 300 * MiB)  # never a blank line
    raw.script(RawReply(lines))
    result = run_client(raw)
    assert result["grew_mib"] < BOUND_MIB, result
    assert result["error"] == "ResponseTooLargeError"
    assert "an event of the stream larger than 4 MiB" in result["reason"]


@pytest.mark.parametrize("compressed", [False, True], ids=["200-mb", "gzip-bomb"])
def test_a_huge_error_body_is_read_only_in_part(raw: RawServer, compressed: bool) -> None:
    body = repeated(b'{"error": {"message": "overloaded ', b"z", 200 * MiB)
    headers = {"Content-Encoding": "gzip"} if compressed else {}
    pieces = gzipped(body) if compressed else body
    raw.script(RawReply(pieces, status=500, content_type="application/json", headers=headers))
    result = run_client(raw)
    assert result["grew_mib"] < BOUND_MIB, result
    assert result["error"] == "ServerError"
    assert "answered HTTP 500" in result["reason"] and "overloaded zzz" in result["reason"]


def test_a_gzip_bomb_in_the_event_stream_ends_with_bounded_memory(raw: RawServer) -> None:
    bomb = gzipped(_chain(sse(chunk("Zip ")), repeated(b"data: ", b"\0", 1024 * MiB)))
    raw.script(RawReply(bomb, headers={"Content-Encoding": "gzip"}))
    result = run_client(raw)
    assert result["grew_mib"] < BOUND_MIB, result
    assert result["error"] == "ResponseTooLargeError"
    assert "larger than 4 MiB" in result["reason"] and result["text"] == "Zip "


def test_a_gzip_bomb_as_a_whole_answer_ends_with_bounded_memory(raw: RawServer) -> None:
    bomb = gzipped(repeated(b'{"choices": "', b" ", 1024 * MiB))
    raw.script(
        RawReply(bomb, content_type="application/json", headers={"Content-Encoding": "gzip"})
    )
    result = run_client(raw)
    assert result["grew_mib"] < BOUND_MIB, result
    assert result["error"] == "ResponseTooLargeError"
    assert "an answer larger than 16 MiB" in result["reason"]


def _chain(*parts: Any) -> Iterator[bytes]:
    for part in parts:
        yield from part


def packed(body: bytes, coding: str) -> list[bytes]:
    """``body`` compressed as ``coding`` (``raw-deflate``: deflate without the zlib
    header, which some servers send), cut into odd-sized pieces."""
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[coding]
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    data = compressor.compress(body) + compressor.flush()
    return [data[i : i + 997] for i in range(0, len(data), 997)]


async def test_compression_is_undone_and_damage_is_a_format_error(raw: RawServer) -> None:
    body = b"".join(sse(*(chunk(f"w{i} ") for i in range(2000)), chunk(finish="stop"), "[DONE]"))
    codings = ["gzip", "deflate", "raw-deflate"]
    for coding in codings:
        header = "gzip" if coding == "gzip" else "deflate"
        raw.script(RawReply(packed(body, coding), headers={"Content-Encoding": header}))
    good = b"".join(packed(b"".join(sse(chunk("Hi"), chunk(finish="stop"), "[DONE]")), "gzip"))
    damaged = good[:12] + bytes(b ^ 0x5A for b in good[12:40]) + good[40:]
    raw.script(
        RawReply([damaged], headers={"Content-Encoding": "gzip"}),
        RawReply([good], headers={"Content-Encoding": "br"}),
    )
    platform = OpenAIPlatform(base_url=raw.base_url, api_key=KEY, retry=RetryPolicy(1))
    for coding in codings:  # decompressed by spezichat now, a bounded piece at a time
        events, error = await collect(new_session(platform))
        assert error is None, (coding, error)
        assert text_of(events) == "".join(f"w{i} " for i in range(2000))
    for why in ("gzip data is damaged", "as 'br', which spezichat did not ask for"):
        _, error = await collect(new_session(platform))
        # Before: httpx's DecodingError escaped as "Unknown LLM error".
        assert isinstance(error, StreamFormatError), error
        assert "could not be decompressed" in error.reason and why in error.reason
    await platform.aclose()


def test_line_ends_split_between_pieces_are_read_once() -> None:
    stream = b"a\r\nb\rc\n\r\nd\r\re\n"
    whole = LineSplitter(100).feed(stream)
    assert whole == [b"a", b"b", b"c", b"", b"d", b"", b"e"]
    for cut in range(1, len(stream)):
        splitter = LineSplitter(100)
        assert splitter.feed(stream[:cut]) + splitter.feed(stream[cut:]) == whole, cut
    splitter = LineSplitter(100)
    assert [line for byte in stream for line in splitter.feed(bytes([byte]))] == whole
    splitter = LineSplitter(8)
    assert splitter.feed(b"12345") == []
    with pytest.raises(LimitExceeded):
        splitter.feed(b"6789")  # the line is 9 bytes and has not ended


# Alive but idle: keep-alive comments, single bytes --------------------------------------------
def slow_text(stop: threading.Event) -> Iterator[bytes]:
    """Twelve pieces of text, one every 100 ms: longer in all than the idle timeout,
    but each piece starts the idle time again."""
    for i in range(12):
        stop.wait(0.1)
        yield from sse(chunk(f"{i} "))


SLOW_TEXT = "".join(f"{i} " for i in range(12))


@pytest.mark.parametrize(
    ("kind", "partial"),
    [("comments", True), ("comments", False), ("bytes", True), ("bytes", False), ("json", False)],
    ids=["comments-after-text", "comments", "bytes-after-text", "bytes", "json-bytes"],
)
async def test_a_reply_that_only_keeps_alive_is_stopped_and_kept(
    raw: RawServer, stop: threading.Event, kind: str, partial: bool
) -> None:
    first = slow_text(stop) if partial else iter(())
    if kind == "comments":
        reply = RawReply(beats(stop, first, b": ping\n\n"))
    elif kind == "bytes":
        reply = RawReply(trickle(stop, first, b": keep-alive\n\n"))
    else:  # a non-streamed answer, one JSON whitespace byte at a time
        reply = RawReply(
            trickle(stop, iter([b'{"choices": [']), b" "), content_type="application/json"
        )
    raw.script(reply)
    platform = OpenAIPlatform(base_url=raw.base_url, api_key=KEY, idle_timeout=IDLE)
    session = new_session(platform)
    events, error = await asyncio.wait_for(collect(session), HANG_GUARD)
    await platform.aclose()
    assert isinstance(error, IdleTimeoutError), error
    assert f"sent nothing new for {IDLE:g} s (the idle timeout)" in error.reason
    assert "`OpenAIPlatform.idle_timeout`" in error.suggestion
    assert "idle_timeout in the [openai] section" in cli_advice(error)
    assert len(raw.posts) == 1  # a stalled server is not asked again
    if partial:
        assert error.description == "The reply stalled and was stopped."
        assert "partial reply is kept" in error.suggestion
        assert text_of(events) == SLOW_TEXT  # slow text was not idle
        entry = session.context[-1]
        assert (entry.content, entry.complete, entry.finish_reason) == (SLOW_TEXT, False, "error")
    else:
        assert error.description == "The OpenAI API stopped sending the reply."
        assert [e.content for e in session.context] == ["Hello?"]


async def test_a_fog_node_that_only_keeps_alive_is_stopped(
    raw: RawServer, stop: threading.Event
) -> None:
    raw.script(RawReply(beats(stop, sse(chunk("Fog ")), b": ping\n\n")))
    config = FogConfig(idle_timeout=IDLE, use_mdns=False)
    url = raw.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(timeout=30) as http:
        client = node_client(http, url, config)
        events = []
        with pytest.raises(FogIdleTimeoutError) as caught:
            async with asyncio.timeout(HANG_GUARD):
                async for event in client.stream_chat({"model": "m", "messages": []}):
                    events.append(event)
    assert text_of(events) == "Fog "
    assert caught.value.description == "The fog node stalled in the middle of the reply."
    assert f"{url} sent nothing new for {IDLE:g} s" in caught.value.reason
    assert "`FogConfig.idle_timeout`" in caught.value.suggestion
    assert "idle_timeout in the [fog] section" in cli_advice(caught.value)
    assert "text so far is kept" in cli_advice(caught.value)


# Token commands that hang ---------------------------------------------------------------------
def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, killed and waiting to be reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def hanging_command(pids: Path) -> str:
    """A shell that starts a background child, then waits forever; it records both pids."""
    return f"echo $$ >> {pids}; sleep 1000 & echo $! >> {pids}; sleep 1000"


async def started(pids: Path) -> list[int]:
    """The pids the command recorded (it records them at once, before it hangs)."""
    for _ in range(500):
        if pids.exists() and len(pids.read_text().split()) == 2:
            break
        await asyncio.sleep(0.02)
    return [int(pid) for pid in pids.read_text().split()]


async def all_gone(pids: list[int]) -> list[int]:
    """The pids still running after waiting up to a while for the kill to land."""
    for _ in range(500):
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        await asyncio.sleep(0.02)
    return left


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Pids a failing test must not leave behind."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, 9)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@needs_proc
async def test_a_hanging_token_command_times_out_and_is_killed(
    tmp_path: Path, reap: list[int]
) -> None:
    pids = tmp_path / "pids"
    provider = CommandToken(hanging_command(pids), timeout=0.5)
    with pytest.raises(FogTokenError) as caught:
        await asyncio.wait_for(provider(), HANG_GUARD)
    reap.extend(await started(pids))
    assert caught.value.reason.endswith("did not finish in 0.5 s; it was stopped.")
    assert "`CommandToken.timeout`" in caught.value.suggestion
    assert "token_timeout in the [fog] section" in cli_advice(caught.value)
    assert await all_gone(reap) == []


@needs_proc
async def test_a_cancelled_token_command_is_killed_with_its_children(
    tmp_path: Path, reap: list[int]
) -> None:
    pids = tmp_path / "pids"
    task = asyncio.create_task(CommandToken(hanging_command(pids), timeout=600)())
    reap.extend(await started(pids))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Before: the shell and its child kept running after the request was given up.
    assert await all_gone(reap) == []


@needs_proc
async def test_a_hanging_token_command_is_not_reported_as_a_slow_node(
    raw: RawServer, tmp_path: Path, reap: list[int]
) -> None:
    pids = tmp_path / "pids"
    url = raw.base_url.removesuffix("/v1")
    token = CommandToken(hanging_command(pids), timeout=0.5)
    config = FogConfig(token=token, health_timeout=0.2, manual_nodes=(url,), use_mdns=False)
    async with httpx.AsyncClient(timeout=30) as http:
        found = await asyncio.wait_for(probe(http, [url], config), HANG_GUARD)
    reap.extend(await started(pids))
    # Before: "did not answer the health check in time", and the command kept running.
    assert isinstance(found.error, FogTokenError), found.error
    assert "did not finish in 0.5 s" in found.error.reason
    assert await all_gone(reap) == []
    assert raw.gets == []  # no request went out without the token


# Settings reach the backends ------------------------------------------------------------------
def test_the_limits_settings_reach_the_backends() -> None:
    from tui.settings import Settings
    from tui.wiring import fog_config, make_platform

    settings = Settings()
    settings.openai.idle_timeout = 7.0
    settings.fog.idle_timeout = 9.0
    settings.fog.token_command = "echo token"
    settings.fog.token_timeout = 3.0
    platform = make_platform("openai", settings)
    assert isinstance(platform, OpenAIPlatform)
    assert platform.limits.idle_timeout == 7.0
    config = fog_config(settings)
    assert config.idle_timeout == 9.0
    assert isinstance(config.token, CommandToken) and config.token.timeout == 3.0
