"""Issue #15, a new user's audit: errors that say what really happened, on real sockets.

A redirect, a base URL without ``/v1``, a Retry-After of 27 hours, a server that takes
the connection and closes it, a silent server, an unreachable base URL with a password
in it, a certificate this computer does not trust (counted: one connection, no retry),
and a tool loop that ends without pointing at a setting that does not exist.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import llm_function
from backends.errors import LLMError, ToolLoopError
from backends.events import Notice
from backends.fog.certs import create_node_certificates
from backends.openai import (
    ConnectivityError,
    ModelAccessError,
    OpenAIPlatform,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
)
from backends.openai.errors import BaseURLError, CertificateError, RedirectError
from tests.openai.helpers import collect, new_session
from tests.support.openai_server import (
    OpenAITestServer,
    Reply,
    ScriptedCall,
    model_not_found_error,
)
from tui.advice import cli_advice

KEY = "sk-test-key"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def assert_well_formed(error: LLMError) -> None:
    """Three parts, each a sentence that ends once."""
    for part in (error.description, error.reason, error.suggestion):
        assert part.strip(), error.explain()
        assert ".." not in part.replace("...", ""), part


def platform_for(base_url: str, **kw: object) -> OpenAIPlatform:
    kw.setdefault("retry", FAST)
    return OpenAIPlatform(base_url=base_url, api_key=KEY, **kw)  # type: ignore[arg-type]


# Redirects --------------------------------------------------------------------------------
async def test_a_redirect_names_where_it_points_and_is_not_followed(
    openai_server: OpenAITestServer,
) -> None:
    moved = f"http://127.0.0.1:{openai_server.port}/moved/v1/chat/completions"
    openai_server.script(Reply(status=308, body={}, headers={"Location": moved}))
    platform = platform_for(openai_server.base_url)
    events, error = await collect(new_session(platform))
    await platform.aclose()

    assert isinstance(error, RedirectError), error and error.explain()
    assert moved in error.reason and "308" in error.reason
    assert "not followed" in error.reason and "key" in error.reason
    assert "base URL" in error.suggestion
    assert_well_formed(error)
    # Asked once, never at the new address.
    assert [r.path for r in openai_server.requests] == ["/v1/chat/completions"]
    assert not [e for e in events if isinstance(e, Notice)]


async def test_a_relative_redirect_is_named_as_a_full_address(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(
        Reply(status=301, body={}, headers={"Location": "/api/v1/models/gpt-test"}),
        route="model",
    )
    platform = platform_for(openai_server.base_url)
    _, error = await collect(new_session(platform, test_model_access=True))
    await platform.aclose()
    assert isinstance(error, RedirectError)
    assert f"http://127.0.0.1:{openai_server.port}/api/v1/models/gpt-test" in error.reason


# A base URL that is not the API ----------------------------------------------------------------
async def test_a_base_url_without_v1_says_to_check_the_base_url(
    openai_server: OpenAITestServer,
) -> None:
    base = f"http://127.0.0.1:{openai_server.port}"  # the server's API is under /v1
    platform = platform_for(base)
    _, error = await collect(new_session(platform, test_model_access=True))
    await platform.aclose()

    assert isinstance(error, BaseURLError), error and error.explain()
    assert not isinstance(error, ModelAccessError)
    assert "key" not in error.description
    assert f"{base}/models/gpt-test" in error.reason and "404" in error.reason
    assert f"try {base}/v1" in error.suggestion
    assert_well_formed(error)
    assert not openai_server.chat_requests


async def test_a_404_page_that_is_no_api_error_is_a_wrong_base_url(
    openai_server: OpenAITestServer,
) -> None:
    # A web server's own page (not an error object) for the chat path: not about a model.
    openai_server.script(Reply(status=404, body="<html><h1>Not Found</h1></html>"))
    platform = platform_for(openai_server.base_url)
    _, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, BaseURLError), error and error.explain()
    assert "not an API error message" in error.reason
    assert "`OpenAIPlatform.base_url` or OPENAI_BASE_URL" in error.suggestion
    assert "base_url in the [openai] section of config.toml or OPENAI_BASE_URL" in cli_advice(error)


async def test_the_model_list_404ing_is_a_wrong_base_url(openai_server: OpenAITestServer) -> None:
    openai_server.script(Reply.api_error(404, "Not found."), route="models")
    platform = platform_for(openai_server.base_url)
    with pytest.raises(BaseURLError) as caught:
        await platform.list_models()
    await platform.aclose()
    assert f"{openai_server.base_url}/models answered HTTP 404" in caught.value.reason


async def test_a_missing_model_is_still_a_model_error(openai_server: OpenAITestServer) -> None:
    openai_server.script(model_not_found_error("gpt-test"), route="model")
    platform = platform_for(openai_server.base_url)
    _, error = await collect(new_session(platform, test_model_access=True))
    await platform.aclose()
    assert isinstance(error, ModelAccessError) and not isinstance(error, BaseURLError)


# Retry-After ------------------------------------------------------------------------------
async def test_a_retry_after_of_27_hours_is_said_in_hours(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(Reply.api_error(429, "Slow down.", retry_after=str(27 * 3600)))
    platform = platform_for(openai_server.base_url)
    events, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, RateLimitError)
    assert "27 hours" in error.suggestion and "Retry-After" in error.suggestion
    assert "a moment" not in error.suggestion
    assert len(openai_server.chat_requests) == 1  # too long to wait for: not retried
    assert not [e for e in events if isinstance(e, Notice)]


# Servers that close or stay silent ----------------------------------------------------------
@contextlib.contextmanager
def tcp_server(handle: str) -> Iterator[tuple[int, list[int]]]:
    """A loopback server that reads a request, then closes ("close") or keeps silent
    ("silent"); yields its port and a one-item list counting connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    count = [0]
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            count[0] += 1
            with contextlib.suppress(OSError):
                conn.recv(65536)
            if handle == "close":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], count
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that waits
        listener.close()
        for conn in held:
            conn.close()
        thread.join(5)


async def test_a_server_that_answers_by_closing_is_not_called_unreachable() -> None:
    with tcp_server("close") as (port, _count):
        base = f"http://127.0.0.1:{port}/v1"
        platform = platform_for(base, retry=RetryPolicy(max_attempts=1))
        _, error = await collect(new_session(platform))
        await platform.aclose()
    assert isinstance(error, ConnectivityError), error and error.explain()
    assert "Could not reach" not in error.reason
    assert "closed the connection without answering" in error.description
    assert f"{base}/chat/completions" in error.reason and "accepted the connection" in error.reason
    assert_well_formed(error)


async def test_a_silent_server_times_out_without_repeating_itself() -> None:
    with tcp_server("silent") as (port, _count):
        platform = platform_for(f"http://127.0.0.1:{port}/v1", timeout=0.3)
        _, error = await collect(new_session(platform))
        await platform.aclose()
    assert isinstance(error, RequestTimeoutError)
    assert "did not answer in time" not in error.reason  # the description says so
    assert f"127.0.0.1:{port}/v1/chat/completions" in error.reason
    assert "0.3 s" in error.reason and "ReadTimeout" in error.reason
    assert_well_formed(error)


async def test_an_unreachable_base_url_is_named_without_its_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    platform = platform_for(
        f"http://alice:hunter2@127.0.0.1:{port}/v1",
        retry=RetryPolicy(max_attempts=1),
    )
    _, error = await collect(new_session(platform))
    await platform.aclose()
    assert isinstance(error, ConnectivityError)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in error.reason
    text = error.explain()
    assert "hunter2" not in text and "alice" not in text
    assert_well_formed(error)


# Certificates ------------------------------------------------------------------------------
@pytest.fixture
def untrusted_tls(tmp_path: Path) -> Iterator[tuple[int, list[int]]]:
    """A TLS server whose certificate comes from a CA this computer does not trust;
    yields its port and a one-item list counting connections."""
    certs = create_node_certificates(tmp_path / "node", host="localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    count = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            count[0] += 1  # before the handshake: the client cannot fail before this
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], count
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that waits
    listener.close()
    thread.join(5)


@pytest.mark.parametrize("check_model", [False, True], ids=["chat", "model-check"])
async def test_an_untrusted_certificate_is_a_certificate_error_tried_once(
    untrusted_tls: tuple[int, list[int]], monkeypatch: pytest.MonkeyPatch, check_model: bool
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    port, connections = untrusted_tls
    platform = platform_for(f"https://localhost:{port}/v1")
    events, error = await collect(new_session(platform, test_model_access=check_model))
    await platform.aclose()

    assert isinstance(error, CertificateError), error and error.explain()
    assert "certificate" in error.description.lower()
    assert f"https://localhost:{port}" in error.reason and "not retried" in error.reason
    assert "SSL_CERT_FILE" in error.suggestion
    assert "network" not in error.description.lower()
    assert_well_formed(error)
    assert connections[0] == 1  # no retry
    assert not [e for e in events if isinstance(e, Notice)]


# The tool loop -------------------------------------------------------------------------------
@llm_function
def look_again(topic: str) -> str:
    """Look something up.

    Args:
        topic: What to look up.
    """
    return f"Nothing new about {topic}."


async def test_the_tool_loop_error_points_at_no_setting_that_does_not_exist(
    openai_server: OpenAITestServer,
) -> None:
    call = ScriptedCall("look_again", {"topic": "fog"})
    openai_server.script(*(Reply(tool_calls=[call]) for _ in range(3)))
    platform = platform_for(openai_server.base_url)
    session = new_session(platform, functions=(look_again,), max_tool_rounds=1)
    _, error = await collect(session)
    await platform.aclose()
    assert isinstance(error, ToolLoopError)
    # There is no tool round setting (see tui/settings.py): the error must not send the
    # user looking for one.
    from tui.settings import Settings

    assert not any("round" in name for name in vars(Settings().general))
    assert "setting" not in error.explain().lower()
    assert_well_formed(error)
