"""The state of one model download, observable: SpeziLLM's ``LLMLocalDownloadManager``.

:class:`DownloadManager` runs a :class:`~backends.local.download.Downloader` on a thread
of its own and keeps a :class:`DownloadState`: ``idle`` (nothing running; ``kept``
bytes of an earlier download wait to be resumed), ``downloading`` (with the latest
:class:`~backends.local.download.DownloadProgress`), ``downloaded`` (complete and
SHA-256 verified) or ``failed`` (with the :class:`~backends.errors.LLMError`).
Listeners hear every change::

    manager = DownloadManager(HubFile("owner/repo", "model-Q4_K_M.gguf"))
    manager.subscribe(lambda state: print(state.phase, state.fraction))
    manager.start()         # returns at once; cancel() stops, start() again resumes
    final = manager.wait()  # or run() to download on the calling thread

Listeners are called on the thread that changed the state (the download's thread, or
the caller's for :meth:`DownloadManager.start`), one change at a time and in order.
They must return quickly and must not wait for the download; a user interface hands
the state over to its own thread (Textual: ``post_message``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from backends.errors import LLMError
from backends.local.download import Downloader, DownloadProgress, DownloadResult
from backends.local.errors import DownloadCancelledError, DownloadError
from backends.local.models import HubFile, ModelStore

log = logging.getLogger(__name__)


class DownloadPhase(str, enum.Enum):
    """Where a download stands."""

    IDLE = "idle"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    FAILED = "failed"


@dataclass(frozen=True)
class DownloadState:
    """One moment of a download. Immutable: every change is a new state."""

    phase: DownloadPhase
    progress: DownloadProgress | None = None
    """The latest progress report of the running (or last) download."""
    kept: int = 0
    """Bytes on disk of an unfinished download, which :meth:`DownloadManager.start` keeps."""
    result: DownloadResult | None = None
    """The finished download (``downloaded`` after a run)."""
    error: LLMError | None = None
    """Why the download failed (``failed``)."""
    stopped: bool = False
    """``idle`` because :meth:`DownloadManager.cancel` stopped a download."""

    @property
    def fraction(self) -> float | None:
        """How much of the file is on disk, 0 to 1; ``None`` when unknown."""
        if self.phase is DownloadPhase.DOWNLOADED:
            return 1.0
        return self.progress.fraction if self.progress is not None else None


Listener = Callable[[DownloadState], None]


class DownloadManager:
    """Downloads one hub file on a thread and publishes its :class:`DownloadState`."""

    def __init__(
        self,
        hub: HubFile,
        store: ModelStore | None = None,
        *,
        downloader: Downloader | None = None,
    ) -> None:
        self.hub = hub
        self.downloader = downloader or Downloader(store)
        self._lock = threading.Lock()
        self._notifying = threading.RLock()
        self._listeners: list[Listener] = []
        self._active = False
        self._idle = threading.Event()
        self._idle.set()
        self._cancelled = False
        self._state = self._resting_state()

    # Observing ---------------------------------------------------------------------------
    @property
    def state(self) -> DownloadState:
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        """Whether a download is under way (from :meth:`start` until its final state)."""
        with self._lock:
            return self._active

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every new state; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # Controlling -------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the download on a thread, or resume a stopped one; retry a failed one.

        Returns ``False`` (and does nothing) while a download is running.
        """
        if not self._begin():
            return False
        threading.Thread(
            target=self._download, name=f"download {self.hub.spec}", daemon=True
        ).start()
        return True

    def run(self) -> DownloadState:
        """Download on the calling thread; returns the final state (never raises for the
        download's errors: they are the ``failed`` state's ``error``)."""
        if not self._begin():
            return self.wait()
        self._download()
        return self.state

    def cancel(self) -> None:
        """Stop the running download after the current piece; what arrived is kept."""
        with self._lock:
            if not self._active:
                return
            self._cancelled = True
        self.downloader.cancel()

    def wait(self, timeout: float | None = None) -> DownloadState:
        """Wait for the running download (if any) to end; returns the state then.

        Not from a listener: listeners run while the download waits for them.
        """
        self._idle.wait(timeout)
        return self.state

    # Internals ---------------------------------------------------------------------------
    def _resting_state(self) -> DownloadState:
        try:
            if self.downloader.is_downloaded(self.hub):
                return DownloadState(DownloadPhase.DOWNLOADED)
            return DownloadState(DownloadPhase.IDLE, kept=self.downloader.partial_size(self.hub))
        except LLMError as error:  # a file name that cannot be stored
            return DownloadState(DownloadPhase.FAILED, error=error)

    def _begin(self) -> bool:
        """Claim the manager for one download and announce ``downloading``."""
        with self._notifying:
            with self._lock:
                if self._active:
                    return False
                self._active = True
                self._idle.clear()
                self._cancelled = False
                kept = self._state.kept
            self._publish(DownloadState(DownloadPhase.DOWNLOADING, kept=kept))
        return True

    def _download(self) -> None:
        failure: LLMError | None = None
        stopped = False
        result: DownloadResult | None = None
        try:
            result = self.downloader.download(self.hub, progress=self._progress)
        except DownloadCancelledError:
            stopped = True
        except LLMError as error:
            failure = error
        except Exception as exc:  # a defect: reported as a failure, never lost on the thread
            log.exception("download of %s failed", self.hub.spec)
            failure = DownloadError(reason=f"{type(exc).__name__}: {exc}")
        except BaseException:  # Ctrl+C during run(): stopped, and the interrupt goes on
            self._finish(DownloadState(DownloadPhase.IDLE, None, self._kept(), stopped=True))
            raise
        progress = self.state.progress
        if result is not None:
            state = DownloadState(DownloadPhase.DOWNLOADED, progress, result=result)
        elif failure is not None:
            state = DownloadState(DownloadPhase.FAILED, progress, self._kept(), error=failure)
        else:
            state = DownloadState(DownloadPhase.IDLE, progress, self._kept(), stopped=stopped)
        self._finish(state)

    def _finish(self, state: DownloadState) -> None:
        with self._notifying:
            with self._lock:
                self._active = False
            self._publish(state)
            with self._lock:
                if not self._active:  # a listener may have started the next download
                    self._idle.set()

    def _progress(self, progress: DownloadProgress) -> None:
        with self._lock:
            cancelled = self._cancelled
        if cancelled:
            # cancel() came before the download cleared its flag: say it again.
            self.downloader.cancel()
        self._publish(replace(self.state, progress=progress, kept=progress.downloaded))

    def _kept(self) -> int:
        try:
            return self.downloader.partial_size(self.hub)
        except (LLMError, OSError):
            return 0

    def _publish(self, state: DownloadState) -> None:
        with self._notifying:
            with self._lock:
                self._state = state
                listeners = list(self._listeners)
            for listener in listeners:
                try:
                    listener(state)
                except Exception:  # one listener's defect must not stop the download
                    log.exception("a download listener failed")


__all__ = ["DownloadManager", "DownloadPhase", "DownloadState", "Listener"]
