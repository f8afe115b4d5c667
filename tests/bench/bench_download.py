"""Download: spezichat's download manager vs a bare httpx download from the same server.

Run by hand: ``python tests/bench/bench_download.py [--size-mb 256] [--runs 7]``.

A file of ``--size-mb`` random bytes is generated in a temporary folder and served from
127.0.0.1 by a small hub look-alike running in its own process (so it never competes with
the client for the GIL): ``HEAD .../resolve/main/FILE`` answers with a 302 to
``/cdn/SHA256`` and the hub's metadata headers, and ``/cdn/`` sends the file with
``sendfile`` and HTTP ranges, counting every body byte it sends.

``--floor`` instead times the bare loop alone, with SHA-256 of every piece in the loop,
and with spezichat's hashing thread: what verifying costs before any other work.

1. Throughput (target: spezichat >= 0.95x bare). Runs alternate between the two sides,
   imports warm, each into a fresh file:

   * bare: ``httpx.Client.stream("GET", cdn_url)`` writing each piece to a file;
   * spezichat: ``DownloadManager`` (a thread, state listeners) running
     ``Downloader.download()``: the metadata request, the lock, SHA-256 on the
     fly and the check against the hub's, fsync, the atomic rename and the metadata file.

   ``sync`` runs between runs (outside the timings) so one side's dirty pages are not
   written back during the other's run. Medians and the median of the per-pair ratios
   are reported. ``--link-mib-s N`` paces the server to about N MiB/s (a network link,
   119 for 1 Gbit/s) instead of as fast as loopback goes.

2. Resume after ``kill -9``: ``spezichat download`` runs as a subprocess against the
   server slowed to about 64 MiB/s, is killed once half the file is on disk, then runs
   again at full speed. Re-fetched = bytes the server sent in the second run minus the
   bytes that were missing on disk (target: at most 1 MiB). The bytes the killed run had
   in flight (sent, but still in socket buffers when it died) are reported too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

REPO = "bench/Big-GGUF"
FILE = "big-Q4_K_M.gguf"
MiB = 1024 * 1024
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# The server (its own process) --------------------------------------------------------------
class _State:
    def __init__(self, path: Path, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256
        self.size = path.stat().st_size
        self.delay = 0.0
        """Seconds to sleep after each MiB sent (0: as fast as sendfile goes)."""
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, *, head: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if path == "/_stats":
                with state.lock:
                    self._json(state.requests)
            elif path == "/_delay":
                state.delay = float(parse_qs(parts.query)["s"][0])
                self._json({"delay": state.delay})
            elif path == f"/{REPO}/resolve/main/{FILE}":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_port}/cdn/x")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{state.sha256}"')
                self.send_header("X-Linked-Size", str(state.size))
                self.send_header("ETag", '"' + state.sha256[:40] + '"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/cdn/x":
                self._file(head=head)
            else:
                self.send_error(404)

        def _json(self, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, *, head: bool) -> None:
            start, end, status = 0, state.size - 1, 200
            wanted = self.headers.get("Range")
            if wanted:
                first, _, last = wanted.removeprefix("bytes=").partition("-")
                start, status = int(first), 206
                end = min(int(last), end) if last else end
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{state.size}")
            self.end_headers()
            self.wfile.flush()
            sent = 0
            if not head:
                try:
                    with state.path.open("rb") as source:
                        offset, left = start, end - start + 1
                        block = MiB if state.delay else left
                        while left > 0:
                            count = self.connection.sendfile(source, offset, min(block, left))
                            offset, left, sent = offset + count, left - count, sent + count
                            if state.delay:
                                time.sleep(state.delay)
                except OSError:
                    self.close_connection = True
            with state.lock:
                state.requests.append(
                    {"method": self.command, "range": wanted, "status": status, "sent": sent}
                )

    return Handler


def serve(path: Path, sha256: str) -> None:
    """Serve ``path`` until stdin closes; prints the port first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(_State(path, sha256)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()
    server.shutdown()


class Server:
    """The server subprocess, seen from the benchmark."""

    def __init__(self, path: Path, sha256: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(path), sha256],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn_url = f"http://localhost:{self.port}/cdn/x"
        self.size = path.stat().st_size

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> list[dict[str, Any]]:
        return list(self._get("/_stats"))

    def set_delay(self, seconds: float) -> None:
        self._get(f"/_delay?s={seconds}")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


# The two clients ----------------------------------------------------------------------------
def bare(url: str, target: Path, sha256: str = "") -> float:
    """Seconds for a minimal httpx streaming download into ``target``.

    ``sha256="inline"`` adds hashing every piece in the loop, ``"thread"`` hashing on a
    second thread with spezichat's :class:`Hasher` (for ``--floor``).
    """
    import httpx

    from backends.local.hashing import Hasher

    start = time.perf_counter()
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", url) as response,
        target.open("wb") as out,
    ):
        response.raise_for_status()
        if sha256 == "inline":
            digest = hashlib.sha256()
            for chunk in response.iter_bytes():
                out.write(chunk)
                digest.update(chunk)
        elif sha256 == "thread":
            hasher = Hasher(target, 0, threading.Event())
            for chunk in response.iter_bytes():
                out.write(chunk)
                hasher.feed(chunk)
            hasher.finish()
        else:
            for chunk in response.iter_bytes():
                out.write(chunk)
    return time.perf_counter() - start


def managed(folder: Path) -> tuple[float, Any]:
    """Seconds for spezichat's download into a fresh store, as the app runs it: the
    ``DownloadManager`` on its own thread, with a listener, around ``Downloader``."""
    from backends.local.download_state import DownloadManager
    from backends.local.models import HubFile, ModelStore

    manager = DownloadManager(HubFile(REPO, FILE), ModelStore(folder))
    manager.subscribe(lambda _state: None)
    start = time.perf_counter()
    manager.start()
    state = manager.wait()
    seconds = time.perf_counter() - start
    assert state.result is not None, state.error
    return seconds, state.result


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MiB))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def throughput(server: Server, work: Path, size: int, sha: str, runs: int, link: float) -> None:
    server.set_delay(1 / link if link else 0)
    bare_times: list[float] = []
    ours: list[float] = []

    def one(side: str, run: int) -> None:
        folder = work / f"{side}-{run}"
        folder.mkdir()
        if side == "bare":
            bare_times.append(bare(server.cdn_url, folder / FILE))
            assert (folder / FILE).stat().st_size == size
        else:
            seconds, result = managed(folder)
            assert result.sha256 == sha and result.fetched == size
            ours.append(seconds)
        shutil.rmtree(folder)
        os.sync()

    one("bare", -1)  # warm-up: imports, page cache of the source file, connections
    one("ours", -1)
    bare_times.clear()
    ours.clear()
    for run in range(runs):
        order = ("bare", "ours") if run % 2 == 0 else ("ours", "bare")
        for side in order:
            one(side, run)

    def rate(seconds: float) -> float:
        return size / MiB / seconds

    b, s = statistics.median(bare_times), statistics.median(ours)
    paired = statistics.median(b2 / s2 for b2, s2 in zip(bare_times, ours, strict=True))
    print("bare httpx  " + " ".join(f"{rate(t):7.0f}" for t in bare_times) + "  MiB/s")
    print("spezichat   " + " ".join(f"{rate(t):7.0f}" for t in ours) + "  MiB/s")
    print(
        f"median: bare {rate(b):.0f} MiB/s ({b:.3f} s), spezichat {rate(s):.0f} MiB/s "
        f"({s:.3f} s); throughput ratio {b / s:.3f} (median per pair {paired:.3f}; "
        "target >= 0.95)"
    )


def floor(server: Server, work: Path, runs: int) -> None:
    """What checking SHA-256 costs by itself: the bare loop with and without it."""
    kinds = {"bare": "", "+ SHA-256 in the loop": "inline", "+ SHA-256 on a thread": "thread"}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for run in range(runs + 1):
        for kind, sha256 in kinds.items():
            target = work / "floor.bin"
            seconds = bare(server.cdn_url, target, sha256)
            target.unlink()
            os.sync()
            if run:  # the first round warms imports, the page cache and connections
                times[kind].append(seconds)
    base = statistics.median(times["bare"])
    print(f"floor: bare httpx download with and without SHA-256, {runs} runs (medians)")
    for kind, values in times.items():
        median = statistics.median(values)
        size = server.size / MiB
        print(f"  {kind:<24} {size / median:6.0f} MiB/s  x{base / median:.2f} of bare")


def resume(server: Server, work: Path, size: int, sha: str) -> None:
    from backends.local.models import HubFile, ModelStore

    data_home = work / "xdg-data"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(work / "hf-home"),
        "XDG_DATA_HOME": str(data_home),
        "XDG_CONFIG_HOME": str(work / "xdg-config"),
    }
    env.pop("HF_TOKEN", None)
    command = [sys.executable, "-m", "tui", "download", f"{REPO}:{FILE}"]
    before = len(server.stats())
    server.set_delay(1 / 64)  # about 64 MiB/s
    os.environ["XDG_DATA_HOME"] = str(data_home)  # where the subprocess will put it
    store = ModelStore()
    target = store.path_for(HubFile(REPO, FILE))
    partial = store.partial_path(target)

    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (partial.exists() and partial.stat().st_size >= size // 2):
        if first.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the first download did not get halfway: {first.communicate()}")
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(0.2)  # let the server notice the broken connection and record it
    kept = partial.stat().st_size
    killed_sent = sum(r["sent"] for r in server.stats()[before:] if r["method"] == "GET")

    server.set_delay(0)
    mark = len(server.stats())
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if second.returncode != 0:
        raise SystemExit(f"the resumed download failed: {second.stderr}")
    resumed = [r for r in server.stats()[mark:] if r["method"] == "GET"]
    resent = sum(r["sent"] for r in resumed)
    verified = hashlib.sha256(target.read_bytes()).hexdigest() == sha
    refetched = resent - (size - kept)
    print(
        f"killed at {kept / MiB:.1f} MiB on disk of {size / MiB:.0f} MiB; the server had sent "
        f"{killed_sent / MiB:.1f} MiB ({(killed_sent - kept) / 1024:.0f} KiB in flight, lost)"
    )
    print(
        f"resume: range {', '.join(str(r['range']) for r in resumed)}; sent "
        f"{resent / MiB:.1f} MiB; re-fetched bytes already on disk: {refetched} "
        f"(target <= {MiB}); SHA-256 of the result {'matches' if verified else 'DIFFERS'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--link-mib-s", type=float, default=0, help="pace the server")
    parser.add_argument(
        "--floor", action="store_true", help="instead: the bare loop with and without SHA-256"
    )
    parser.add_argument("--serve", nargs=2, metavar=("FILE", "SHA256"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1])
        return

    size = args.size_mb * MiB
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        work = Path(folder)
        source = work / "source.bin"
        sha = make_file(source, size)
        server = Server(source, sha)
        os.environ["HF_ENDPOINT"] = server.url
        os.environ["HF_HOME"] = str(work / "hf-home")
        os.environ.pop("HF_TOKEN", None)
        cpu = platform.processor() or platform.machine()
        print(
            f"file {args.size_mb} MiB in {work} ({shutil.disk_usage(work).free // MiB} MiB free)"
            f"  runs {args.runs}  cores {os.cpu_count()}  {cpu}  Python {platform.python_version()}"
        )
        try:
            if args.floor:
                floor(server, work, args.runs)
                return
            throughput(server, work, size, sha, args.runs, args.link_mib_s)
            resume(server, work, size, sha)
        finally:
            server.close()


if __name__ == "__main__":
    main()
