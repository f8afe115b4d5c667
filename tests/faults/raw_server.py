"""A loopback HTTP server that sends exactly the bytes a test scripts: broken servers.

The OpenAI test server (tests/support/openai_server.py) speaks the protocol correctly and
breaks it in the ways it was built for. This one sends whatever a test hands it, so a
test can send what real servers and proxies get wrong: malformed SSE lines, invalid JSON,
a body cut off in the middle of a line, a chunked body that stops in the middle of a
chunk. Real sockets on 127.0.0.1, real HTTP/1.1 requests parsed by ``http.server``.

``GET .../models/{id}`` answers with the model object unless a test scripted a reply
for it; every ``POST`` takes the next :class:`RawReply` (a test that runs out of them
fails on a 500 naming the problem).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

End = Literal["finish", "drop", "hang"]


@dataclass(frozen=True)
class RawReply:
    """What the server sends for one request."""

    pieces: Sequence[bytes] = ()
    """The body, sent piece by piece (each its own HTTP chunk when ``chunked``)."""
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = True
    """Chunked transfer; else the body ends when the connection closes."""
    end: End = "finish"
    """``finish``: end the body properly; ``drop``: cut the connection after the pieces;
    ``hang``: send nothing more until the server stops."""


def sse(*events: str | dict[str, Any]) -> list[bytes]:
    """Well-formed ``data:`` events (dicts are JSON-encoded)."""
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


def chunk(text: str = "", *, finish: str | None = None) -> dict[str, Any]:
    """A chat.completion.chunk carrying ``text`` (and a finish reason)."""
    delta = {"content": text} if text else {}
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are what these tests are about


class RawServer:
    """Use as a context manager; :attr:`base_url` ends in ``/v1``."""

    def __init__(self) -> None:
        self.replies: deque[RawReply] = deque()
        self.posts: list[Any] = []
        """The decoded JSON bodies of the POST requests, in order."""
        self.gets: list[str] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: RawReply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> RawReply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else None

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(owner: RawServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            owner.gets.append(self.path)
            model = self.path.rsplit("/", 1)[-1]
            body = json.dumps({"id": model, "object": "model", "owned_by": "tests"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with owner._lock:
                owner.posts.append(json.loads(raw) if raw else None)
            reply = owner._next() or RawReply(
                (b"no reply scripted",), status=500, content_type="text/plain"
            )
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            for piece in reply.pieces:
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece
                self.wfile.write(data)
                self.wfile.flush()
            if reply.end == "hang":
                owner._release.wait(timeout=60)
            if reply.end != "finish":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = True

    return Handler
