"""Broken servers against the OpenAI backend, over real loopback sockets.

What arrived is kept (marked incomplete), the caller gets a typed error that says what
went wrong, nothing is retried once output arrived, and nothing runs forever.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backends.events import Notice, TextDelta, ToolCallRequested
from backends.functions import llm_function
from backends.openai import (
    IncompleteReplyError,
    OpenAIPlatform,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
)
from backends.openai.errors import StreamFormatError
from backends.openai.platform import OpenAISession
from backends.state import LLMState
from tests.faults.raw_server import RawReply, RawServer, chunk, sse
from tests.openai.helpers import collect, new_session
from tests.support.openai_server import (
    OpenAITestServer,
    Reply,
    ScriptedCall,
    openai_server,
    rate_limit_error,
    server_error,
)
from tui.advice import cli_advice

__all__ = ["openai_server"]

KEY = "sk-test-key"
ROOT = Path(__file__).resolve().parents[2]
FAST_RETRIES = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01)


@pytest.fixture
def raw() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


@pytest.fixture
async def raw_platform(raw: RawServer) -> AsyncIterator[OpenAIPlatform]:
    platform = OpenAIPlatform(base_url=raw.base_url, api_key=KEY, retry=FAST_RETRIES)
    yield platform
    await platform.aclose()


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_kept_incomplete(session: OpenAISession, text: str) -> None:
    """The partial reply is the context's last entry, marked as ended by an error."""
    entry = session.context[-1]
    assert (entry.role.value, entry.content, entry.complete) == ("assistant", text, False)
    assert entry.finish_reason == "error"
    assert session.state is LLMState.ERROR


# Malformed SSE and invalid JSON --------------------------------------------------------------
async def test_sse_lines_the_spec_ignores_do_not_disturb_the_reply(
    raw: RawServer, raw_platform: OpenAIPlatform
) -> None:
    split = json.dumps(chunk("wor")).replace(", ", ",\ndata: ", 1)  # one event, two lines
    raw.script(
        RawReply(
            [
                b": keep-alive comment\n\n",
                b"event: ping\ndata:\n\n",
                b"retry: 3000\nid: 7\nfoo: an unknown field\nno colon at all\n\n",
                f"data:{json.dumps(chunk('Hel'))}\r\n\r\n".encode(),  # no space, CRLF
                f"data: {json.dumps(chunk('lo, '))}\r\r".encode(),  # CR line ends
                f"data: {split}\n\n".encode(),
                b'data: {"choices": [{"index": 0, "delta": {"content": "ld!"}}]}\n\n',
                *sse(chunk(finish="stop"), "[DONE]"),
            ]
        )
    )
    session = new_session(raw_platform)
    events, error = await collect(session)
    assert error is None and text_of(events) == "Hello, world!"
    entry = session.context[-1]
    assert (entry.content, entry.complete, entry.finish_reason) == ("Hello, world!", True, "stop")


async def test_invalid_json_keeps_the_partial_reply_and_names_the_data(
    raw: RawServer, raw_platform: OpenAIPlatform
) -> None:
    raw.script(RawReply(sse(chunk("The answer "), chunk("is "), '{"choices": [{"ind', "[DONE]")))
    session = new_session(raw_platform)
    events, error = await collect(session)
    assert isinstance(error, StreamFormatError)
    assert error.description == "The server sent a reply spezichat cannot read."
    assert error.reason == """Unreadable stream data: '{"choices": [{"ind'"""
    assert "OpenAI-compatible" in error.suggestion
    assert text_of(events) == "The answer is "
    assert_kept_incomplete(session, "The answer is ")
    assert len(raw.posts) == 1  # output had arrived: never retried, never duplicated
    # The conversation goes on from the kept text.
    raw.script(RawReply(sse(chunk("42."), chunk(finish="stop"), "[DONE]")))
    session.context.append_user("Go on.")
    assert "".join([piece async for piece in session.generate()]) == "42."
    assert raw.posts[1]["messages"][-2] == {"role": "assistant", "content": "The answer is "}


async def test_invalid_json_before_any_text_is_reported_not_retried(
    raw: RawServer, raw_platform: OpenAIPlatform
) -> None:
    raw.script(RawReply(sse("<html>Bad gateway</html>")))
    session = new_session(raw_platform)
    events, error = await collect(session)
    assert isinstance(error, StreamFormatError) and "<html>Bad gateway</html>" in error.reason
    assert not [e for e in events if isinstance(e, Notice)] and len(raw.posts) == 1
    assert session.context[-1].content == "Hello?"  # the user's message is untouched


@pytest.mark.parametrize(
    "bad",
    [
        '{"choices": [{"index": 0, "delta": "not an object"}]}',
        '{"choices": 5}',
        '{"choices": [], "usage": {"prompt_tokens": "many", "completion_tokens": 1}}',
        '{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]}',
        "[1, 2]",
        '"just a string"',
    ],
    ids=["delta-string", "choices-number", "usage-text", "function-string", "array", "string"],
)
async def test_json_of_the_wrong_shape_is_a_format_error_naming_it(
    raw: RawServer, raw_platform: OpenAIPlatform, bad: str
) -> None:
    raw.script(RawReply(sse(chunk("Partial"), bad, "[DONE]")))
    session = new_session(raw_platform)
    _, error = await collect(session)
    # Before the fix, four of these escaped as AttributeError, TypeError or ValueError
    # (reported as "Unknown LLM error" with Python's message).
    assert isinstance(error, StreamFormatError)
    assert f"Unreadable stream data: {bad!r}" == error.reason
    assert_kept_incomplete(session, "Partial")


async def test_an_event_stream_holding_no_events_is_a_format_error(
    raw: RawServer, raw_platform: OpenAIPlatform
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
    raw.script(RawReply((page,)))
    events, error = await collect(new_session(raw_platform))
    # Before: "closed the stream before sending anything", retried 5 times.
    assert isinstance(error, StreamFormatError)
    assert f"{len(page)} bytes labelled text/event-stream" in error.reason
    assert len(raw.posts) == 1 and not [e for e in events if isinstance(e, Notice)]


async def test_invalid_utf8_is_replaced_not_fatal(
    raw: RawServer, raw_platform: OpenAIPlatform
) -> None:
    bad = b'data: {"choices": [{"index": 0, "delta": {"content": "caf\xc3 ok"}}]}\n\n'
    raw.script(RawReply([bad, *sse(chunk(finish="stop"), "[DONE]")]))
    events, error = await collect(new_session(raw_platform))
    assert error is None and text_of(events) == "caf\ufffd ok"


# The connection drops mid-reply ------------------------------------------------------------
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
async def test_a_cut_in_the_middle_of_a_line_keeps_what_was_complete(
    raw: RawServer, raw_platform: OpenAIPlatform, chunked: bool
) -> None:
    pieces = [*sse(chunk("Complete "), chunk("words")), b'data: {"choices": [{"index": 0, "de']
    raw.script(RawReply(pieces, chunked=chunked, end="drop"))
    session = new_session(raw_platform)
    events, error = await collect(session)
    assert isinstance(error, IncompleteReplyError)
    assert "partial reply is kept" in error.suggestion
    assert text_of(events) == "Complete words"
    assert_kept_incomplete(session, "Complete words")
    assert len(raw.posts) == 1


async def test_a_cut_in_the_middle_of_a_tool_call_runs_nothing(
    openai_server: OpenAITestServer,
) -> None:
    calls: list[str] = []

    @llm_function
    def delete_file(path: str) -> str:
        """Delete a file.

        Args:
            path: The file to delete.
        """
        calls.append(path)
        return "deleted"

    # Role, text, the call's name, 2 argument fragments, then the connection drops.
    openai_server.script(
        Reply(
            text="Deleting it.",
            chunk_size=20,
            tool_calls=[ScriptedCall("delete_file", {"path": "/tmp/important.txt"})],
            arguments_chunk_size=6,
            drop_after=5,
        )
    )
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key=KEY, retry=FAST_RETRIES)
    session = new_session(platform, functions=(delete_file,))
    events, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, IncompleteReplyError)
    assert calls == [] and not [e for e in events if isinstance(e, ToolCallRequested)]
    assert_kept_incomplete(session, "Deleting it.")
    assert len(openai_server.chat_requests) == 1


# Bursts of 429 and 500 ----------------------------------------------------------------------
async def test_a_burst_of_429_and_5xx_then_a_reply_yields_it_once(
    openai_server: OpenAITestServer,
) -> None:
    past = email.utils.formatdate(time.time() - 5, usegmt=True)
    openai_server.script(
        rate_limit_error(retry_after_ms="5"),
        server_error(500),
        Reply(text="lost", drop_after=1),  # the role chunk, then the connection drops
        Reply.api_error(503, "busy", type="server_error", retry_after=past),
        Reply(text="The whole reply.", chunk_size=4),
    )
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key=KEY, retry=FAST_RETRIES)
    session = new_session(platform)
    events, error = await collect(session)
    await platform.aclose()
    assert error is None and text_of(events) == "The whole reply."
    notes = [e.text for e in events if isinstance(e, Notice)]
    assert len(notes) == 4 and notes[-1].endswith("(attempt 5 of 5).")
    assert "Retrying in 0 ms" in notes[-1]  # a Retry-After date in the past: at once
    replies = [e for e in session.context if e.role.value == "assistant"]
    assert [(e.content, e.complete) for e in replies] == [("The whole reply.", True)]
    assert len(openai_server.chat_requests) == 5


async def test_an_endless_5xx_burst_on_the_model_list_ends_with_a_clear_error(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(*[server_error(502)] * 20, route="models")
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key=KEY, retry=FAST_RETRIES)
    with pytest.raises(ServerError) as caught:
        await platform.list_models()
    await platform.aclose()
    assert "HTTP 502" in caught.value.reason and caught.value.suggestion
    listed = [r for r in openai_server.requests if r.path.endswith("/models")]
    assert len(listed) == FAST_RETRIES.max_attempts


def test_ask_prints_a_retried_reply_once_and_a_lasting_burst_as_an_error(
    openai_server: OpenAITestServer,
) -> None:
    def ask() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": KEY}
        command = [sys.executable, "-m", "tui", "ask", "-b", "openai", "-m", "gpt-test", "hi"]
        return subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,  # piped stdin would be added to the prompt
        )

    reply = "Exactly once, whatever happened before."
    openai_server.script(
        rate_limit_error(retry_after_ms="10"),
        Reply.api_error(503, "busy", type="server_error", retry_after_ms="10"),
        Reply(text=reply, chunk_size=5),
    )
    done = ask()
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply
    assert done.stderr.count("note: ") == 2 and "(attempt 3 of 3)" in done.stderr

    openai_server.script(*[rate_limit_error(retry_after_ms="10")] * 10)
    failed = ask()
    assert failed.returncode == 1 and failed.stdout == ""
    assert "error: The OpenAI API is rate limiting this key." in failed.stderr
    assert "Traceback" not in failed.stderr
    assert len(openai_server.chat_requests) == 6  # 3 + 3 attempts, then it stopped


# A server that accepts the connection and never answers --------------------------------------
@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A listening socket that is never accepted from: the kernel completes the TCP
    handshake and takes the request, and nothing ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize("check_model", [True, False], ids=["model-check", "chat"])
async def test_the_configured_timeout_fires_with_a_clear_error(
    silent: socket.socket, check_model: bool
) -> None:
    platform = OpenAIPlatform(base_url=url_of(silent), api_key=KEY, timeout=0.3, retry=FAST_RETRIES)
    session = new_session(platform, test_model_access=check_model)
    events, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, RequestTimeoutError)
    assert error.description == "The OpenAI API did not answer in time."
    assert "`OpenAIPlatform.timeout`" in error.suggestion  # the library's own name
    assert "timeout in the [openai] section of config.toml" in cli_advice(error)
    assert not [e for e in events if isinstance(e, Notice)]  # a timeout is not retried
    assert [e.content for e in session.context] == ["Hello?"]


@pytest.mark.parametrize("check_model", [True, False], ids=["model-check", "chat"])
async def test_cancel_works_while_the_server_never_answers(
    silent: socket.socket, check_model: bool
) -> None:
    # The timeout is far away: only the cancel can end this in time.
    platform = OpenAIPlatform(base_url=url_of(silent), api_key=KEY, timeout=600)
    session = new_session(platform, test_model_access=check_model)
    task = asyncio.create_task(collect(session))
    # Wait until the connection is made (it waits in the listener's accept queue).
    while not select.select([silent], [], [], 0)[0]:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time to send the request and start waiting for the answer
    session.cancel()
    # Before the fix, a cancel during the model check waited for the full timeout.
    _, error = await asyncio.wait_for(task, timeout=30)
    await platform.aclose()
    assert error is None
    assert session.state is LLMState.READY and session.error is None
    assert [e.content for e in session.context] == ["Hello?"]
