"""A loopback server that speaks the OpenAI HTTP API, for tests and benchmarks.

Real sockets on 127.0.0.1 (an ephemeral port), real HTTP/1.1 with keep-alive and chunked
transfer, real server-sent events. It runs in a background thread::

    with OpenAITestServer(api_key="sk-test") as server:
        server.script(Reply(text="Hello there!"), Reply.api_error(429, code="rate_limit_exceeded"))
        ...  # point a client at server.base_url
        server.chat_requests[0].body  # what the client sent

or through the ``openai_server`` fixture (import it into a conftest.py), which also fails
the test when a chat request body does not conform to the vendored
CreateChatCompletionRequest schema (tests/spec/).

Routes under ``/v1``: ``GET /models``, ``GET /models/{id}`` (404 ``model_not_found`` for
unknown ids), ``POST /chat/completions`` (streamed when the body says ``stream: true``).
Every request is recorded (method, path, headers, JSON body). A wrong or missing bearer
token gets the API's 401 ``invalid_api_key`` error. Each chat request takes the next
scripted :class:`Reply`; with none left it echoes the last user message. Replies can
stream text in small chunks, tool calls with arguments split across chunks, the usage
chunk and ``[DONE]``; or answer with the spec's error objects and status codes (and
Retry-After), drop the connection mid-stream, stream slowly, stall, or never answer.
Pass an ``ssl.SSLContext`` to serve HTTPS.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SCHEMA_PATH = (
    Path(__file__).resolve().parents[1] / "spec" / "create_chat_completion_request.schema.json"
)


@dataclass(frozen=True)
class ScriptedCall:
    """A tool call the scripted model makes; ``arguments`` is streamed in fragments."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    text: str = ""
    """Assistant text, streamed ``chunk_size`` characters per chunk."""
    chunk_size: int = 3
    tool_calls: Sequence[ScriptedCall] = ()
    """Tool calls streamed after the text, arguments ``arguments_chunk_size`` at a time."""
    arguments_chunk_size: int = 5
    finish_reason: str | None = None
    """Default: "tool_calls" when there are tool calls, else "stop"; "" sends none."""
    usage: Mapping[str, int] | None = None
    """Usage numbers; default: counted from the request and reply."""
    status: int = 200
    error: Mapping[str, Any] | None = None
    """ErrorResponse body (``{"error": {...}}``) sent with ``status``."""
    body: Any = None
    """Any other JSON body to send with ``status`` instead of a chat reply."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before each chunk (a slow server)."""
    hang: bool = False
    """Never answer (until the server stops)."""
    stall_after: int | None = None
    """Send this many chunks, then nothing more (until the server stops)."""
    drop_after: int | None = None
    """Send this many chunks, then close the connection mid-stream."""
    done: bool = True
    """End the stream with ``data: [DONE]``."""
    stream_error: Mapping[str, Any] | None = None
    """An error object sent as an event after the chunks (then the stream ends)."""

    @classmethod
    def api_error(
        cls,
        status: int,
        message: str = "Something went wrong.",
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
    ) -> Reply:
        """The spec's ErrorResponse with ``status`` (and Retry-After headers)."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls(
            status=status,
            error=error_object(message, type=type, code=code, param=param),
            headers=headers,
        )


def error_object(
    message: str, *, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# Errors as the API words them.
def invalid_key_error() -> Reply:
    return Reply.api_error(
        401,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def quota_error() -> Reply:
    return Reply.api_error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def rate_limit_error(retry_after_ms: str = "10") -> Reply:
    return Reply.api_error(
        429,
        "Rate limit reached for requests. Please try again in 10ms.",
        type="requests",
        code="rate_limit_exceeded",
        retry_after_ms=retry_after_ms,
    )


def server_error(status: int = 500) -> Reply:
    return Reply.api_error(
        status, "The server had an error while processing your request.", type="server_error"
    )


def model_not_found_error(model: str) -> Reply:
    return Reply.api_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: Any
    """The decoded JSON body (``None`` without one)."""

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.startswith("Bearer ") else None


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def spec_errors(body: Any) -> list[str]:
    """Where ``body`` violates CreateChatCompletionRequest (empty when it conforms)."""
    errors = sorted(_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def tool_sequence_errors(body: Any) -> list[str]:
    """What the real API rejects with 400 beyond the schema: each assistant message with
    ``tool_calls`` must be followed by one tool message per call id, and every tool
    message must answer such a call."""
    messages = body.get("messages") if isinstance(body, Mapping) else None
    errors: list[str] = []
    waiting: list[str] = []
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "tool":
            if message.get("tool_call_id") in waiting:
                waiting.remove(message["tool_call_id"])
            else:
                errors.append(
                    f"messages/{index}: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'"
                )
            continue
        if waiting:
            errors.append(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(waiting)}"
            )
        waiting = [
            str(call.get("id"))
            for call in message.get("tool_calls") or ()
            if isinstance(call, Mapping)
        ]
    if waiting:
        errors.append(f"tool_call_ids without response messages: {', '.join(waiting)}")
    return errors


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: OpenAITestServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        context = self.owner.ssl_context
        if context is not None:
            # The handshake happens in the handler thread, on first read.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up, or refuse our certificate, are part of the tests.
        import sys

        self.owner.handler_errors.append(repr(sys.exc_info()[1]))


class OpenAITestServer:
    """The server; use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-key",
        models: Sequence[str] = ("gpt-test", "gpt-test-mini"),
        ssl_context: ssl.SSLContext | None = None,
        validate: bool = True,
        prefix: str = "/v1",
    ) -> None:
        self.api_key = api_key
        """The accepted bearer token; ``None`` accepts any request."""
        self.models = list(models)
        self.ssl_context = ssl_context
        self.validate = validate
        self.prefix = prefix.rstrip("/")
        self.requests: list[RecordedRequest] = []
        self.spec_violations: list[str] = []
        self.handler_errors: list[str] = []
        self._scripts: dict[str, deque[Reply]] = {
            "chat": deque(),
            "models": deque(),
            "model": deque(),
        }
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle --------------------------------------------------------------------------
    def start(self) -> OpenAITestServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._release.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.prefix}"

    # Scripting ----------------------------------------------------------------------------
    def script(self, *replies: Reply, route: str = "chat") -> None:
        """Queue replies for ``route``: "chat", "models" (the list) or "model" (one model)."""
        with self._lock:
            self._scripts[route].extend(replies)

    def _next(self, route: str) -> Reply | None:
        with self._lock:
            queue = self._scripts[route]
            return queue.popleft() if queue else None

    def release(self) -> None:
        """Let hanging and stalled replies end (the server stops them too)."""
        self._release.set()

    # Recording ----------------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == f"{self.prefix}/chat/completions"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    @property
    def owner(self) -> OpenAITestServer:
        return self.server.owner

    # Routing ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        owner = self.owner
        owner._record(
            RecordedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if owner.api_key is not None and self.headers.get("Authorization") != (
            f"Bearer {owner.api_key}"
        ):
            return self._reply(invalid_key_error())
        prefix = owner.prefix
        if method == "GET" and path == f"{prefix}/models":
            return self._models()
        if method == "GET" and path.startswith(f"{prefix}/models/"):
            from urllib.parse import unquote

            return self._model(unquote(path[len(prefix) + 8 :]))
        if method == "POST" and path == f"{prefix}/chat/completions":
            return self._chat(body, raw)
        self._reply(Reply.api_error(404, f"Unknown request URL: {method} {path}."))

    def _models(self) -> None:
        reply = self.owner._next("models")
        if reply is not None:
            return self._reply(reply)
        data = [_model_object(model) for model in self.owner.models]
        self._json(200, {"object": "list", "data": data})

    def _model(self, model: str) -> None:
        reply = self.owner._next("model")
        if reply is not None:
            return self._reply(reply)
        if model not in self.owner.models:
            return self._reply(model_not_found_error(model))
        self._json(200, _model_object(model))

    def _chat(self, body: Any, raw: bytes) -> None:
        owner = self.owner
        if not isinstance(body, dict):
            return self._reply(Reply.api_error(400, f"The body is not a JSON object: {raw[:80]!r}"))
        if owner.validate:
            problems = spec_errors(body) + tool_sequence_errors(body)
            if problems:
                with owner._lock:
                    owner.spec_violations.extend(problems)
                return self._reply(
                    Reply.api_error(400, "Invalid request body: " + "; ".join(problems))
                )
        reply = owner._next("chat") or _echo(body)
        if reply.status != 200 or reply.error is not None or reply.body is not None:
            return self._reply(reply)
        if reply.hang:
            self._wait_for_release()
            return self._close()
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(body, reply, include_usage)
        self._json(200, _completion(body, reply), reply.headers)

    # Writing ------------------------------------------------------------------------------
    def _reply(self, reply: Reply) -> None:
        if reply.hang:
            self._wait_for_release()
            return self._close()
        payload = reply.body if reply.body is not None else reply.error
        self._json(reply.status, payload if payload is not None else {}, reply.headers)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], reply: Reply, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        events = [json.dumps(chunk) for chunk in _chunks(body, reply, include_usage)]
        if reply.stream_error is not None:
            events.append(json.dumps(reply.stream_error))
        elif reply.done:
            events.append("[DONE]")
        for count, event in enumerate(events):
            if reply.drop_after is not None and count >= reply.drop_after:
                return self._drop()
            if reply.stall_after is not None and count >= reply.stall_after:
                self._wait_for_release()
                return self._drop()
            if reply.delay:
                time.sleep(reply.delay)
            self._chunk(f"data: {event}\n\n".encode())
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _wait_for_release(self) -> None:
        self.owner._release.wait(timeout=60)

    def _drop(self) -> None:
        """Close the connection without finishing the response."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _close(self) -> None:
        self.close_connection = True


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "spezichat-tests"}


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _echo(body: Mapping[str, Any]) -> Reply:
    return Reply(text=f"Echo: {_last_user_text(body)}")


def _split(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(body: Mapping[str, Any], reply: Reply, pieces: int) -> dict[str, int]:
    if reply.usage is not None:
        return dict(reply.usage)
    prompt = sum(
        len(str(m.get("content") or "").split()) + 3
        for m in body.get("messages") or ()
        if isinstance(m, Mapping)
    )
    return {"prompt_tokens": prompt, "completion_tokens": pieces, "total_tokens": prompt + pieces}


def _finish_reason(reply: Reply) -> str | None:
    if reply.finish_reason is not None:
        return reply.finish_reason or None
    return "tool_calls" if reply.tool_calls else "stop"


def _chunks(body: Mapping[str, Any], reply: Reply, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The CreateChatCompletionStreamResponse chunks of ``reply``."""
    base = {
        "id": "chatcmpl-spezichat-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "system_fingerprint": "fp_test",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    pieces = 0
    for piece in _split(reply.text, reply.chunk_size):
        pieces += 1
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        call_id = call.id or f"call_test_{index}"
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for fragment in _split(call.arguments_text(), reply.arguments_chunk_size):
            pieces += 1
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield chunk({}, _finish_reason(reply))
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(body, reply, pieces)}


def _completion(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    """A non-streamed ChatCompletion for ``reply``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_test_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_text()},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-spezichat-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(body, reply, len(_split(reply.text, reply.chunk_size))),
    }


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    """A running server; the test fails if any chat request violated the spec."""
    with OpenAITestServer() as server:
        yield server
        assert not server.spec_violations, "requests violated the spec:\n" + "\n".join(
            server.spec_violations
        )
