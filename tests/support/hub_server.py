"""A loopback HTTP server that acts as the Hugging Face hub for download tests.

Point ``HF_ENDPOINT`` at :attr:`HubServer.url`. It speaks what huggingface_hub and the
download manager use:

* ``HEAD``/``GET /{owner}/{repo}/resolve/{revision}/{filename}`` answers like the hub
  does for an LFS file: a 302 to a "CDN" address with ``X-Linked-Etag`` (the SHA-256),
  ``X-Linked-Size``, ``X-Repo-Commit`` and ``ETag``; errors carry ``X-Error-Code``
  (``RepoNotFound`` 401, ``GatedRepo`` 401/403, ``EntryNotFound`` 404,
  ``RevisionNotFound`` 404).
* ``GET``/``HEAD /cdn/{sha256}`` serves the bytes with HTTP ``Range`` support (206 with
  ``Content-Range``, 416 past the end). The CDN lives on ``localhost`` while the hub is
  ``127.0.0.1``: both loopback, but different hosts, as on the real hub, so clients must
  not send the token there.

Every request is recorded in :attr:`HubServer.requests`. ``chunk_delay`` slows the
body down (seconds per 64 KiB) so a test can interrupt a transfer halfway.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote, urlsplit

SEND_CHUNK = 64 * 1024


@dataclass
class HubFileEntry:
    data: bytes
    sha256: str
    corrupt: bool = False
    """Serve altered bytes while advertising the original SHA-256."""
    advertised_size: int | None = None
    """Size announced in X-Linked-Size when it differs from the data's."""


@dataclass
class HubRepo:
    files: dict[str, HubFileEntry] = field(default_factory=dict)
    gated: bool = False
    commit: str = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    range: str | None
    authorization: str | None
    status: int
    body_bytes: int


class HubServer:
    """The fake hub. Use as a context manager; it listens on 127.0.0.1, a free port."""

    def __init__(self, *, token: str | None = None, chunk_delay: float = 0.0) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.token = token
        """The token that opens gated repositories."""
        self.chunk_delay = chunk_delay
        self.drop_after: int | None = None
        """Cut the connection of the next CDN body after this many bytes (once)."""
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # Setup ------------------------------------------------------------------------------
    def add_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        *,
        gated: bool = False,
        corrupt: bool = False,
        advertised_size: int | None = None,
    ) -> str:
        """Publish ``data`` as ``repo_id/filename``; returns its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        repo = self.repos.setdefault(repo_id, HubRepo())
        repo.gated = repo.gated or gated
        repo.files[filename] = HubFileEntry(data, sha, corrupt, advertised_size)
        return sha

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://localhost:{self.port}/cdn"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def cdn_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/cdn/") and r.method == "GET"]

    def find(self, sha: str) -> HubFileEntry | None:
        for repo in self.repos.values():
            for entry in repo.files.values():
                if entry.sha256 == sha:
                    return entry
        return None

    # Lifecycle --------------------------------------------------------------------------
    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        # Routing ------------------------------------------------------------------------
        def _route(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/cdn/"):
                self._cdn(path[len("/cdn/") :], head=head)
                return
            parts = path.strip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id = "/".join(parts[:2])
                self._resolve(repo_id, parts[3], "/".join(parts[4:]))
                return
            self._error(404, "EntryNotFound", "Not found.")

        def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(401, "RepoNotFound", "Repository not found")
                return
            if repo.gated:
                auth = self.headers.get("Authorization")
                if auth is None:
                    self._error(
                        401,
                        "GatedRepo",
                        f"Access to model {repo_id} is restricted. You must have access "
                        "to it and be authenticated to access it. Please log in.",
                    )
                    return
                if hub.token is None or auth != f"Bearer {hub.token}":
                    self._error(
                        403,
                        "GatedRepo",
                        f"Access to model {repo_id} is restricted and you are not in the "
                        "authorized list.",
                    )
                    return
            if revision not in ("main", repo.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return
            entry = repo.files.get(filename)
            if entry is None:
                self._error(404, "EntryNotFound", f"{filename} does not exist on main")
                return
            self.send_response(302)
            self.send_header("Location", f"{hub.cdn_url}/{entry.sha256}")
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{entry.sha256}"')
            size = entry.advertised_size or len(entry.data)
            self.send_header("X-Linked-Size", str(size))
            self.send_header("ETag", '"' + hashlib.sha1(entry.data).hexdigest() + '"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._record(302, 0)

        def _cdn(self, sha: str, *, head: bool) -> None:
            entry = hub.find(sha)
            if entry is None:
                self._error(404, None, "No such object.")
                return
            data = entry.data
            if entry.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            total = len(data)
            start, end = 0, total - 1
            status = 200
            wanted = self.headers.get("Range")
            if wanted:
                spec = wanted.removeprefix("bytes=")
                first, _, last = spec.partition("-")
                start = int(first)
                end = int(last) if last else total - 1
                if start >= total:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{total}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self._record(416, 0)
                    return
                end = min(end, total - 1)
                status = 206
            body = data[start : end + 1]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
            self.end_headers()
            sent = 0
            if not head:
                try:
                    for offset in range(0, len(body), SEND_CHUNK):
                        piece = body[offset : offset + SEND_CHUNK]
                        self.wfile.write(piece)
                        self.wfile.flush()
                        sent += len(piece)
                        if hub.drop_after is not None and sent >= hub.drop_after:
                            hub.drop_after = None
                            self.close_connection = True
                            break
                        if hub.chunk_delay:
                            time.sleep(hub.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
            self._record(status, sent)

        def _error(self, status: int, code: str | None, message: str) -> None:
            body = ('{"error": "' + message.replace('"', "'") + '"}').encode()
            self.send_response(status)
            if code is not None:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self._record(status, 0)

        def _record(self, status: int, body_bytes: int) -> None:
            hub.record(
                RecordedRequest(
                    method=self.command,
                    path=urlsplit(self.path).path,
                    range=self.headers.get("Range"),
                    authorization=self.headers.get("Authorization"),
                    status=status,
                    body_bytes=body_bytes,
                )
            )

    return Handler
