"""SHA-256 of a download while it is written, on a second thread.

SHA-256 costs about half as much CPU as receiving and writing the bytes, so hashing in
line with the transfer slows a fast download down; :class:`Hasher` runs it on another
thread, overlapped with the transfer (tests/bench/bench_download.py measures it).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path
from typing import Any

from backends.local.errors import DownloadCancelledError

CHUNK_SIZE = 1024 * 1024


def hash_file(path: Path, digest: Any, cancel: threading.Event, size: int | None = None) -> None:
    """Add the first ``size`` bytes of ``path`` (all of it by default) to ``digest``."""
    left = size
    with path.open("rb") as handle:
        while left is None or left > 0:
            block = handle.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
            if cancel.is_set():
                raise DownloadCancelledError()


class Hasher:
    """The SHA-256 of a download, computed on a second thread while the transfer goes on.

    The thread first hashes the ``prefix`` bytes already in ``path`` (a resumed
    download), then every chunk given to :meth:`feed`, in order, handed over in batches.
    The queue between the threads is bounded, so a slow CPU slows the transfer instead of
    filling memory. Setting ``cancel`` stops it early; an error it meets is raised by the
    next :meth:`feed` or by :meth:`finish`.
    """

    BATCH = 4 * 1024 * 1024
    """Chunks are handed over in batches of this many bytes and hashed joined, in one
    call: each call takes the GIL twice, and with a call per 64 KiB piece the transfer
    waited for it often enough to lose 4-10% of its throughput on loopback here."""
    QUEUE_BATCHES = 8

    def __init__(self, path: Path, prefix: int, cancel: threading.Event) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(self.QUEUE_BATCHES)
        self._batch: list[bytes] = []
        self._batched = 0
        self._cancel = cancel
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, args=(path, prefix), name="sha256", daemon=True
        )
        self._thread.start()

    def feed(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= self.BATCH:
            if self._error is not None:
                raise self._error
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def finish(self) -> str:
        """Wait for the thread; the hex digest of everything (raises what it raised)."""
        if self._batch and not self._closed:
            self._queue.put(self._batch)
        self.stop()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def stop(self) -> None:
        """End the thread (after what was fed); safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _run(self, path: Path, prefix: int) -> None:
        try:
            if prefix:
                hash_file(path, self._digest, self._cancel, prefix)
            while (batch := self._queue.get()) is not None:
                if self._cancel.is_set():
                    continue
                self._digest.update(b"".join(batch))
        except BaseException as exc:  # handed to the downloading thread
            self._error = exc
            while self._queue.get() is not None:  # never leave feed() blocked
                pass
