"""A loopback server that sends one pre-rendered chat-completions SSE stream, fast.

Benchmarks use it so that the server is never the bottleneck: the whole stream is
rendered once, then written in 64 KiB blocks to every client that asks.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "bench-model"


def render_stream(tokens: int, model: str = MODEL) -> bytes:
    """``tokens`` content chunks (one word each), a usage chunk and ``[DONE]``."""
    base: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
    }
    lines = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return "data: " + json.dumps({**base, "choices": [choice]}) + "\n\n"

    lines.append(chunk({"role": "assistant", "content": ""}))
    for index in range(tokens):
        word = f"w{index % 997}"
        piece = f"{word}\n" if index % 16 == 15 else f"{word} "
        lines.append(chunk({"content": piece}))
    lines.append(chunk({}, "stop"))
    usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}
    lines.append("data: " + json.dumps({**base, "choices": [], "usage": usage}) + "\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


class SSEServer:
    """``with SSEServer(tokens) as server: server.base_url``"""

    def __init__(self, tokens: int) -> None:
        self.body = render_stream(tokens)
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> SSEServer:
        body = self.body

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for start in range(0, len(data), 65536):
                    self.wfile.write(data[start : start + 65536])

            def do_GET(self) -> None:
                model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}
                if self.path.endswith("/models"):
                    payload = {"object": "list", "data": [model]}
                else:
                    payload = model
                self._send(200, json.dumps(payload).encode(), "application/json")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._send(200, body, "text/event-stream")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                # Like real servers: no Nagle delay between the headers and the body.
                conn, address = super().get_request()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return conn, address

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
