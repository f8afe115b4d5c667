"""Every error class, retries, cancellation and broken streams, against real sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from backends.errors import LLMError
from backends.events import Notice, TextDelta
from backends.openai import (
    ConnectivityError,
    IncompleteReplyError,
    InsufficientQuotaError,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    ModelAccessError,
    OpenAIPlatform,
    OpenAISchema,
    RateLimitError,
    RequestRejectedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
)
from backends.state import LLMState
from tests.openai.helpers import collect, new_session
from tests.support.openai_server import (
    OpenAITestServer,
    Reply,
    quota_error,
    rate_limit_error,
    server_error,
)
from tui.advice import cli_advice


def notices(events: list[object]) -> list[str]:
    return [e.text for e in events if isinstance(e, Notice)]


def text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_wrong_key_is_an_invalid_key_error(openai_server: OpenAITestServer) -> None:
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key="sk-wrong")
    session = platform.session(OpenAISchema(model="gpt-test"))
    session.context.append_user("Hello?")
    _, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, InvalidAPIKeyError)
    assert "API key" in error.description and "Incorrect API key provided" in error.reason
    assert "spezichat key set" in cli_advice(error)
    assert session.state is LLMState.ERROR and session.error is error
    assert len(openai_server.requests) == 1  # not retried


@pytest.mark.parametrize(("status", "model"), [(404, "gpt-nonexistent"), (403, "gpt-test")])
async def test_model_access_test_failure(
    platform: OpenAIPlatform, openai_server: OpenAITestServer, status: int, model: str
) -> None:
    if status == 403:
        openai_server.script(
            Reply.api_error(403, "You are not allowed to sample from this model."),
            route="model",
        )
    session = platform.session(OpenAISchema(model=model))
    session.context.append_user("Hello?")
    _, error = await collect(session)
    assert isinstance(error, ModelAccessError) and error.status == status
    assert f"'{model}'" in error.description
    assert not openai_server.chat_requests  # nothing was generated


async def test_model_not_found_during_chat_is_a_model_access_error(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(
        Reply.api_error(404, "The model `gpt-x` does not exist.", code="model_not_found")
    )
    _, error = await collect(new_session(platform))
    assert isinstance(error, ModelAccessError)


async def test_quota_exhausted_is_not_retried(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(quota_error())
    _, error = await collect(new_session(platform))
    assert isinstance(error, InsufficientQuotaError)
    assert "quota" in error.description
    assert len(openai_server.chat_requests) == 1


async def test_rate_limit_is_retried_honouring_retry_after(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(rate_limit_error(retry_after_ms="30"), Reply(text="Finally."))
    session = new_session(platform)
    events, error = await collect(session)
    assert error is None and text(events) == "Finally."
    # The wait announced is the server's (30 ms), not the policy's own backoff.
    assert notices(events) == [
        "The OpenAI API is rate limiting this key. Retrying in 30 ms (attempt 2 of 3)."
    ]
    assert len(openai_server.chat_requests) == 2


async def test_retry_after_in_seconds_is_read(
    openai_server: OpenAITestServer,
) -> None:
    platform = OpenAIPlatform(
        base_url=openai_server.base_url,
        api_key="sk-test-key",
        retry=RetryPolicy(max_attempts=2, base_delay=5, max_retry_after=1),
    )
    # 1 second is within max_retry_after; 5 seconds is not and ends the request at once.
    openai_server.script(
        Reply.api_error(429, "slow down", code="rate_limit_exceeded", retry_after="1")
    )
    events, error = await collect(new_session(platform))
    assert error is None and "Retrying in 1.0 s" in notices(events)[0]
    openai_server.script(
        Reply.api_error(429, "slow down", code="rate_limit_exceeded", retry_after="5")
    )
    events, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, RateLimitError) and error.retry_after == 5
    assert notices(events) == []
    assert len(openai_server.chat_requests) == 3


async def test_rate_limit_retries_are_bounded(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(*[rate_limit_error("1")] * 5)
    events, error = await collect(new_session(platform))
    assert isinstance(error, RateLimitError) and error.status == 429
    assert len(notices(events)) == 2
    assert len(openai_server.chat_requests) == 3


async def test_server_errors_are_retried_before_any_token(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(server_error(500), server_error(503), Reply(text="Recovered."))
    events, error = await collect(new_session(platform))
    assert error is None and text(events) == "Recovered."
    assert len(notices(events)) == 2
    openai_server.script(*[server_error(502)] * 3)
    _, error = await collect(new_session(platform))
    assert isinstance(error, ServerError) and "HTTP 502" in error.reason
    assert len(openai_server.chat_requests) == 6


async def test_a_rejected_request_names_the_servers_reason(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(
        Reply.api_error(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
            param="messages",
        )
    )
    _, error = await collect(new_session(platform))
    assert isinstance(error, RequestRejectedError)
    assert "maximum context length" in error.reason and error.info is not None
    assert error.info.code == "context_length_exceeded" and error.info.param == "messages"


async def test_connection_dropped_mid_stream_keeps_the_partial_reply(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(text="The first part of a reply", chunk_size=5, drop_after=4))
    session = new_session(platform)
    events, error = await collect(session)
    assert isinstance(error, IncompleteReplyError)
    assert "incomplete" in error.description
    assert "partial reply is kept" in error.suggestion
    partial = text(events)
    assert partial == "The first part "  # 3 text chunks of 5 after the role chunk
    entry = session.context[-1]
    assert (entry.content, entry.complete, entry.finish_reason) == (partial, False, "error")
    assert len(openai_server.chat_requests) == 1  # no retry once text arrived
    # The conversation goes on: the next request carries the kept partial reply.
    session.context.append_user("Go on.")
    assert "".join([p async for p in session.generate()]) == "Echo: Go on."
    sent = openai_server.chat_requests[1].body["messages"]
    assert sent[-2] == {"role": "assistant", "content": partial}


async def test_stream_ending_without_done_is_incomplete(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(text="cut", finish_reason="", done=False))
    _, error = await collect(new_session(platform))
    assert isinstance(error, IncompleteReplyError)


async def test_drop_before_any_token_is_retried(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(text="lost", drop_after=1), Reply(text="Second try."))
    events, error = await collect(new_session(platform))
    assert error is None and text(events) == "Second try."
    assert len(openai_server.chat_requests) == 2


async def test_error_event_inside_the_stream(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(
        Reply(
            text="Half an ans",
            finish_reason="",
            stream_error={
                "error": {
                    "message": "overloaded",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    )
    session = new_session(platform)
    _, error = await collect(session)
    assert isinstance(error, IncompleteReplyError) and "overloaded" in error.reason
    assert session.context[-1].content == "Half an ans"


async def test_connection_refused_is_a_connectivity_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    platform = OpenAIPlatform(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-test-key",
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )
    events, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, ConnectivityError)
    assert error.reason.startswith(f"Could not reach the OpenAI API at http://127.0.0.1:{port}/v1")
    assert "ConnectError" in error.reason
    assert "OPENAI_BASE_URL" in error.suggestion
    assert len(notices(events)) == 1  # retried once, then reported


async def test_a_server_that_never_answers_times_out(openai_server: OpenAITestServer) -> None:
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key="sk-test-key", timeout=0.3)
    openai_server.script(Reply(hang=True))
    _, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, RequestTimeoutError)
    assert "timeout" in error.suggestion


async def test_a_stall_mid_reply_times_out_as_incomplete(openai_server: OpenAITestServer) -> None:
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key="sk-test-key", timeout=0.3)
    openai_server.script(Reply(text="Some words", chunk_size=5, stall_after=2))
    session = new_session(platform)
    _, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, IncompleteReplyError) and "timeout" in error.reason
    assert session.context[-1].content == "Some " and not session.context[-1].complete


async def test_cancel_while_the_server_never_answers(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(hang=True))
    session = new_session(platform)
    events: list[object] = []

    async def consume() -> None:
        async for event in session.stream():
            events.append(event)

    task = asyncio.create_task(consume())
    while not openai_server.chat_requests:  # wait until the request is in flight
        await asyncio.sleep(0.01)
    session.cancel()
    await asyncio.wait_for(task, timeout=10)  # returns without an error
    assert session.state is LLMState.READY and session.error is None


async def test_cancel_mid_stream_keeps_the_text_so_far(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    # The server sends a few chunks, then stalls; the cancel comes while the client
    # waits for more and must interrupt that wait.
    openai_server.script(Reply(text="one two three four five six", chunk_size=4, stall_after=3))
    session = new_session(platform)
    pieces: list[str] = []
    async for piece in session.generate():
        pieces.append(piece)
        asyncio.get_running_loop().call_later(0.2, session.cancel)
    text = "".join(pieces)
    assert text == "one two "  # the role chunk and two text chunks came before the stall
    entry = session.context[-1]
    assert (entry.content, entry.complete, entry.finish_reason) == (text, False, "stopped")
    assert session.state is LLMState.READY


async def test_missing_key_for_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    # No request is made: the key is missing before anything is sent.
    platform = OpenAIPlatform()
    session = platform.session(OpenAISchema(model="gpt-4o-mini"))
    session.context.append_user("hi")
    _, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, MissingAPIKeyError)
    assert "OPENAI_API_KEY" in error.suggestion and "spezichat key set" in cli_advice(error)


async def test_the_key_is_not_sent_where_a_redirect_points(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    with OpenAITestServer(api_key=None) as elsewhere:
        openai_server.script(
            Reply(
                status=307, body={}, headers={"Location": f"{elsewhere.base_url}/chat/completions"}
            )
        )
        _, error = await collect(new_session(platform))
        assert isinstance(error, LLMError) and getattr(error, "status", None) == 307
        assert elsewhere.requests == []
