"""Resumable, verified downloads of GGUF files from the Hugging Face hub.

huggingface_hub provides the URL, the file's metadata (size, the LFS SHA-256, the
commit) and the access token; the bytes are fetched with httpx into
``<file>.partial`` using HTTP ranges. A cancelled, failed or killed download leaves the
partial file (and a small ``.partial.json`` naming the exact file version) in place, and
the next download of the same file, in this process or a later one, asks only for the
bytes that are missing. When the file is complete its SHA-256 is checked against the
hub's before it is renamed into place atomically.

``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` are read when a download starts.
Downloads run synchronously; call :meth:`Downloader.download` from a worker thread and
:meth:`Downloader.cancel` from any thread, or let
:class:`~backends.local.download_state.DownloadManager` run it on a thread and publish
its state (idle, downloading, downloaded, failed) to listeners.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.local.download_http import check_response, disk_error, flush, start_writeback
from backends.local.errors import (
    ChecksumMismatchError,
    DownloadCancelledError,
    DownloadError,
    GatedModelError,
    InsufficientDiskSpaceError,
    OfflineError,
    RemoteFileNotFoundError,
)
from backends.local.hashing import Hasher, hash_file
from backends.local.models import HubFile, ModelStore
from backends.secrets import private_directory

DISK_MARGIN = 64 * 1024 * 1024
"""Free space left on the disk after a download, on top of the file itself."""
WRITEBACK_EVERY = 32 * 1024 * 1024
"""Bytes after which the kernel is asked to start writing the new part to disk."""
_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    """The hub's base URL: ``HF_ENDPOINT`` when set, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids contacting the hub."""
    return (os.environ.get("HF_HUB_OFFLINE") or "").upper() in _TRUE


@dataclass(frozen=True)
class RemoteFile:
    """What the hub says about one file version."""

    hub: HubFile
    url: str
    """Where the bytes are served (often a CDN address the hub redirects to)."""
    size: int | None
    sha256: str | None
    """The LFS object's SHA-256; ``None`` for small files kept in git."""
    commit: str | None
    etag: str | None


@dataclass(frozen=True)
class DownloadProgress:
    """A progress report: bytes on disk so far, out of ``total``."""

    downloaded: int
    total: int | None
    rate: float
    """Bytes per second over this run's transfer."""
    eta: float | None
    """Seconds left at the current rate; ``None`` when unknown."""
    resumed_from: int = 0
    """Bytes that were already on disk when this run started."""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.downloaded / self.total)


@dataclass(frozen=True)
class DownloadResult:
    """A finished download."""

    path: Path
    size: int
    sha256: str | None
    fetched: int
    """Bytes transferred by this run (less than ``size`` when it resumed)."""
    resumed_from: int
    already_present: bool = False


ProgressCallback = Callable[[DownloadProgress], None]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class Downloader:
    """Downloads hub files into a :class:`ModelStore`. One download at a time per object."""

    def __init__(
        self,
        store: ModelStore | None = None,
        *,
        token: str | None = None,
        endpoint: str | None = None,
        timeout: float = 30.0,
        progress_interval: float = 0.1,
    ) -> None:
        self.store = store or ModelStore()
        self._token = token
        self._endpoint = endpoint
        self.timeout = timeout
        self.progress_interval = progress_interval
        self._cancel = threading.Event()

    @property
    def endpoint(self) -> str:
        return (self._endpoint or hub_endpoint()).rstrip("/")

    def token(self) -> str | None:
        """The explicit token, else ``HF_TOKEN`` or the token saved by ``hf auth login``."""
        if self._token is not None:
            return self._token
        from huggingface_hub import get_token

        token: str | None = get_token()
        return token

    def cancel(self) -> None:
        """Stop the running download after the current chunk; the partial file stays."""
        self._cancel.set()

    # Metadata ----------------------------------------------------------------------------
    def metadata(self, hub: HubFile) -> RemoteFile:
        """Ask the hub for the file's download URL, size and SHA-256."""
        if offline_mode():
            raise OfflineError(reason=f"HF_HUB_OFFLINE is set; {hub.spec} cannot be fetched.")
        from huggingface_hub import errors, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        # huggingface_hub >= 1.0 calls the HTTP 404 for a file RemoteEntryNotFoundError.
        missing_file = getattr(errors, "RemoteEntryNotFoundError", errors.EntryNotFoundError)

        url = hf_hub_url(hub.repo_id, hub.filename, revision=hub.revision, endpoint=self.endpoint)
        try:
            meta = get_hf_file_metadata(
                url, token=self.token() or False, timeout=self.timeout, endpoint=self.endpoint
            )
        except GatedRepoError as exc:
            raise GatedModelError(
                f"Access to {hub.repo_id} is restricted.",
                reason=f"The repository is gated and the hub refused access ({_status(exc)}).",
            ) from exc
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise RemoteFileNotFoundError(
                f"The repository {hub.repo_id} was not found on the hub.",
                reason=(
                    f"The hub has no repository {hub.repo_id} at revision {hub.revision}, "
                    "or it is private and no valid token was sent."
                ),
                suggestion=("Check the repository id; for a private repository set HF_TOKEN."),
            ) from exc
        except missing_file as exc:
            raise RemoteFileNotFoundError(
                f"{hub.filename} was not found in {hub.repo_id}.",
                reason=f"The repository has no file called '{hub.filename}'.",
                suggestion="Check the file name (it is case-sensitive) on the model's page.",
            ) from exc
        except HfHubHTTPError as exc:
            raise DownloadError(reason=f"The hub answered with an error: {exc}") from exc
        except Exception as exc:  # network errors; their classes vary by version
            raise DownloadError(
                "The hub could not be reached.",
                reason=f"{self.endpoint}: {exc}",
                suggestion="Check the network connection (and HF_ENDPOINT), then retry.",
            ) from exc
        etag = meta.etag
        sha256 = etag if etag and len(etag) == 64 and _is_hex(etag) else None
        return RemoteFile(
            hub=hub,
            url=meta.location or url,
            size=meta.size,
            sha256=sha256,
            commit=meta.commit_hash,
            etag=etag,
        )

    # Status ---------------------------------------------------------------------------------
    def is_downloaded(self, hub: HubFile) -> bool:
        """Whether the file is already complete in the store (no network needed)."""
        return self.store.path_for(hub).is_file()

    def partial_size(self, hub: HubFile) -> int:
        """Bytes of an unfinished download of ``hub`` that a new download would keep."""
        partial = self.store.partial_path(self.store.path_for(hub))
        return partial.stat().st_size if partial.is_file() else 0

    # Download ------------------------------------------------------------------------------
    def download(self, hub: HubFile, progress: ProgressCallback | None = None) -> DownloadResult:
        """Download ``hub`` into the store, resuming a partial download; returns the file.

        A file that is already complete (and matches the hub's checksum when the hub can
        be asked) is not downloaded again.
        """
        from filelock import FileLock, Timeout

        self._cancel.clear()
        target = self.store.path_for(hub)
        lock = FileLock(str(target.with_name(target.name + ".lock")))
        try:
            private_directory(target.parent)
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise DownloadError(
                f"{hub.filename} is already being downloaded.",
                reason="Another spezichat process is downloading the same file right now.",
                suggestion="Wait for it to finish, or stop it and run this download again.",
            ) from exc
        except OSError as exc:
            raise disk_error(self.store, exc, hub, None) from exc
        try:
            return self._download_locked(hub, target, progress)
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)

    def _download_locked(
        self, hub: HubFile, target: Path, progress: ProgressCallback | None
    ) -> DownloadResult:
        if target.is_file() and offline_mode():
            size = target.stat().st_size
            sha = self.store.read_meta(target).get("sha256")
            return DownloadResult(target, size, sha, 0, size, already_present=True)
        remote = self.metadata(hub)
        try:
            return self._install(hub, target, remote, progress)
        except OSError as exc:
            raise disk_error(self.store, exc, hub, remote.size) from exc

    def _install(
        self, hub: HubFile, target: Path, remote: RemoteFile, progress: ProgressCallback | None
    ) -> DownloadResult:
        if target.is_file():
            present = self._check_present(target, remote)
            if present is not None:
                return present
        partial = self.store.partial_path(target)
        state = self.store.meta_path(partial)
        start = self._resumable_bytes(partial, state, remote)
        self._check_disk(target.parent, remote, start)
        state.write_text(json.dumps(self._fingerprint(remote)), encoding="utf-8")

        fetched, sha = self._fetch(remote, partial, start, progress)
        size = partial.stat().st_size
        if remote.size is not None and size != remote.size:
            raise DownloadError(
                "The download ended early.",
                reason=f"The server sent {size} of {remote.size} bytes.",
            )
        if remote.sha256 is not None and sha != remote.sha256:
            partial.unlink(missing_ok=True)
            state.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                reason=(
                    f"The file's SHA-256 is {sha}, but the hub published {remote.sha256} "
                    f"for {hub.spec}."
                ),
            )
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
        state.unlink(missing_ok=True)
        self.store.write_meta(
            target,
            {
                "source": "hub",
                "repo_id": hub.repo_id,
                "filename": hub.filename,
                "revision": hub.revision,
                "commit": remote.commit,
                "sha256": sha,
                "size": size,
                "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        return DownloadResult(target, size, sha, fetched, start)

    def _check_present(self, target: Path, remote: RemoteFile) -> DownloadResult | None:
        """The existing file as a result when it is the hub's version, else ``None``."""
        size = target.stat().st_size
        recorded = self.store.read_meta(target).get("sha256")
        if remote.size is not None and size != remote.size:
            return None
        if remote.sha256 is not None and recorded != remote.sha256:
            digest = hashlib.sha256()
            hash_file(target, digest, self._cancel)
            if digest.hexdigest() != remote.sha256:
                return None
            recorded = remote.sha256
        return DownloadResult(target, size, recorded, 0, size, already_present=True)

    @staticmethod
    def _fingerprint(remote: RemoteFile) -> dict[str, Any]:
        return {"sha256": remote.sha256, "etag": remote.etag, "size": remote.size}

    def _resumable_bytes(self, partial: Path, state: Path, remote: RemoteFile) -> int:
        """Bytes of the partial file to keep: all of it when it is the same file version."""
        if not partial.is_file():
            return 0
        try:
            saved = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        size = partial.stat().st_size
        same = saved == self._fingerprint(remote)
        if not same or (remote.size is not None and size > remote.size):
            partial.unlink()
            return 0
        return size

    def _check_disk(self, directory: Path, remote: RemoteFile, start: int) -> None:
        if remote.size is None:
            return
        needed = remote.size - start
        free = shutil.disk_usage(directory).free
        if needed + DISK_MARGIN > free:
            from backends.local.catalog import human_size

            raise InsufficientDiskSpaceError(
                reason=(
                    f"{remote.hub.filename} needs {human_size(needed)} more, but "
                    f"{directory} has {human_size(free)} free."
                ),
            )

    def _headers(self, url: str, start: int) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity", "User-Agent": "spezichat"}
        if start:
            headers["Range"] = f"bytes={start}-"
        token = self.token()
        # The token goes to the hub only, never to the CDN the hub redirects to.
        if token and _origin(url) == _origin(self.endpoint):
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _fetch(
        self,
        remote: RemoteFile,
        partial: Path,
        start: int,
        progress: ProgressCallback | None,
    ) -> tuple[int, str]:
        """Append the missing bytes to ``partial``; returns the count and the file's SHA-256."""
        import httpx

        began = time.monotonic()
        fetched = 0
        reported = 0.0
        total = remote.size

        def report(done: int, force: bool = False) -> None:
            nonlocal reported
            now = time.monotonic()
            if progress is None or (not force and now - reported < self.progress_interval):
                return
            reported = now
            elapsed = max(now - began, 1e-6)
            rate = fetched / elapsed
            eta = (total - done) / rate if total is not None and rate > 0 else None
            progress(DownloadProgress(done, total, rate, eta, start))

        report(start, force=True)
        if total is not None and start >= total:
            return 0, Hasher(partial, start, self._cancel).finish()
        headers = self._headers(remote.url, start)
        timeout = httpx.Timeout(self.timeout, read=self.timeout)
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=True) as client,
                client.stream("GET", remote.url, headers=headers) as response,
            ):
                check_response(remote, response, start)
                if response.status_code == 200 and start:
                    # The server ignored the range: start over.
                    start = 0
                mode = "ab" if start else "wb"
                with partial.open(mode) as out:
                    hasher = Hasher(partial, start, self._cancel)
                    synced = 0
                    try:
                        # Pieces as they arrive, so a cancel takes effect quickly on any link.
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                            hasher.feed(chunk)
                            fetched += len(chunk)
                            if fetched - synced >= WRITEBACK_EVERY:
                                start_writeback(out, start + synced, fetched - synced)
                                synced = fetched
                            if self._cancel.is_set():
                                out.flush()
                                raise DownloadCancelledError(
                                    reason=(
                                        f"Stopped after {start + fetched} bytes; they are kept "
                                        f"in {partial}."
                                    )
                                )
                            report(start + fetched)
                        sha = hasher.finish()
                    finally:
                        hasher.stop()
                    flush(out)
        except httpx.HTTPError as exc:
            raise DownloadError(
                "The download was interrupted.",
                reason=f"{type(exc).__name__}: {exc}",
                suggestion="Run the download again; it resumes where it stopped.",
            ) from exc
        report(start + fetched, force=True)
        return fetched, sha


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _status(exc: Any) -> str:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return f"HTTP {code}" if code else type(exc).__name__
