"""A download of an on-device model, shown as a progress bar with cancel and resume.

The download itself, and its state, belong to
:class:`backends.local.download_state.DownloadManager`; :class:`DownloadPanel` only draws
that state. It subscribes to the manager, whose listener runs on the download's thread
and only posts a :class:`DownloadPanel.StateChanged` message (``post_message`` is
thread-safe); the panel redraws when the message arrives on the app's thread. It reports
the end of a download with :class:`DownloadPanel.Finished` (the file is complete and
verified), :class:`DownloadPanel.Stopped` (cancelled: the partial file is kept,
:meth:`DownloadPanel.start` resumes) and :class:`DownloadPanel.Failed` (an ``LLMError``,
shown as what/why/what to do).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, ProgressBar, Static

from backends.errors import LLMError
from backends.local.catalog import human_size
from backends.local.download import DownloadProgress
from backends.local.download_state import DownloadManager, DownloadPhase, DownloadState
from backends.local.models import HubFile, ModelStore
from backends.untrusted import printable
from tui.advice import advice_in


def describe_progress(progress: DownloadProgress) -> str:
    """``"412.3 MB of 1.1 GB · 24.1 MB/s · 29 s left"``."""
    done = human_size(progress.downloaded)
    parts = [f"{done} of {human_size(progress.total)}" if progress.total else done]
    if progress.rate > 0:
        parts.append(f"{human_size(progress.rate)}/s")
    if progress.eta is not None and progress.downloaded < (progress.total or 0):
        seconds = int(progress.eta)
        left = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
        parts.append(f"{left} left")
    return " · ".join(parts)


class DownloadPanel(Vertical):
    """Progress bar, status line and Cancel/Resume buttons for one hub file."""

    DEFAULT_CSS: ClassVar[str] = """
    DownloadPanel { height: auto; }
    DownloadPanel ProgressBar { margin-top: 1; }
    DownloadPanel .download-status { height: auto; color: $text-muted; }
    DownloadPanel .download-status.error { color: $error; }
    DownloadPanel Horizontal { height: auto; }
    DownloadPanel Button { margin-right: 1; }
    """

    class StateChanged(Message):
        """The manager's state changed (posted from the download's thread)."""

        def __init__(self, state: DownloadState) -> None:
            super().__init__()
            self.state = state

    class Finished(Message):
        def __init__(self, panel: DownloadPanel, path: Path, resumed_from: int) -> None:
            super().__init__()
            self.panel = panel
            self.path = path
            self.resumed_from = resumed_from

    class Stopped(Message):
        def __init__(self, panel: DownloadPanel, kept: int) -> None:
            super().__init__()
            self.panel = panel
            self.kept = kept

    class Failed(Message):
        def __init__(self, panel: DownloadPanel, error: LLMError) -> None:
            super().__init__()
            self.panel = panel
            self.error = error

    def __init__(
        self,
        hub: HubFile,
        store: ModelStore,
        *,
        autostart: bool = False,
        manager: DownloadManager | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.store = store
        self._owns_manager = manager is None
        self.manager = manager or DownloadManager(hub, store)
        """The download this panel shows; a manager passed in may already be running."""
        self.autostart = autostart
        """Start downloading as soon as the panel is mounted."""
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        return self.manager.running

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, id="download-bar")
        yield Static("", classes="download-status", id="download-status")
        with Horizontal():
            yield Button("Cancel", id="download-cancel", variant="warning")
            yield Button("Resume", id="download-resume", variant="primary")

    def on_mount(self) -> None:
        self._unsubscribe = self.manager.subscribe(self._from_manager)
        state = self.manager.state
        if state.phase is DownloadPhase.IDLE:
            self._set_buttons(running=False, kept=state.kept)
            if state.kept:
                self._status(f"{human_size(state.kept)} from an earlier download will be kept.")
        else:
            self._draw(state, announce=False)
        if self.autostart:
            self.start()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._owns_manager:
            self.manager.cancel()  # the partial file stays for the next download

    # Control ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start, or resume, the download."""
        self.manager.start()

    def cancel(self) -> None:
        """Stop after the current chunk; what arrived is kept for resuming."""
        if self.running:
            self._status("Stopping…")
            self.manager.cancel()

    @on(Button.Pressed, "#download-cancel")
    def _cancel_pressed(self) -> None:
        self.cancel()

    @on(Button.Pressed, "#download-resume")
    def _resume_pressed(self) -> None:
        self.start()

    # Drawing the manager's state ------------------------------------------------------------
    def _from_manager(self, state: DownloadState) -> None:
        """The manager's listener: on the download's thread, so it only posts a message."""
        self.post_message(self.StateChanged(state))

    @on(StateChanged)
    def _state_changed(self, message: StateChanged) -> None:
        message.stop()
        self._draw(message.state, announce=True)

    def _draw(self, state: DownloadState, *, announce: bool) -> None:
        if state.phase is DownloadPhase.DOWNLOADING:
            self._downloading(state)
        elif state.phase is DownloadPhase.DOWNLOADED:
            self._finished(state, announce)
        elif state.phase is DownloadPhase.FAILED and state.error is not None:
            self._failed(state.error, announce)
        elif state.stopped:
            self._stopped(state.kept, announce)

    def _downloading(self, state: DownloadState) -> None:
        self._set_buttons(running=True, kept=state.kept)
        progress = state.progress
        if progress is None:
            self._status("Asking the hub for the file…")
            return
        bar = self.query_one("#download-bar", ProgressBar)
        bar.update(total=progress.total, progress=progress.downloaded)
        self._status(describe_progress(progress))

    def _finished(self, state: DownloadState, announce: bool) -> None:
        bar = self.query_one("#download-bar", ProgressBar)
        path = self.store.path_for(self.hub) if state.result is None else state.result.path
        resumed_from = state.result.resumed_from if state.result is not None else 0
        size = path.stat().st_size if path.is_file() else 0
        bar.update(total=size, progress=size)
        how = f" (resumed at {human_size(resumed_from)})" if resumed_from else ""
        self._status(f"✓ Downloaded {human_size(size)}{how}; SHA-256 verified.")
        self.query_one("#download-cancel", Button).display = False
        self.query_one("#download-resume", Button).display = False
        if announce:
            self.post_message(self.Finished(self, path, resumed_from))

    def _stopped(self, kept: int, announce: bool) -> None:
        self._set_buttons(running=False, kept=kept)
        self._status(f"Stopped. {human_size(kept)} kept; Resume continues where it stopped.")
        if announce:
            self.post_message(self.Stopped(self, kept))

    def _failed(self, error: LLMError, announce: bool) -> None:
        self._set_buttons(running=False, kept=0)
        self.query_one("#download-resume", Button).label = "Retry"
        advice = advice_in(self.app, error)
        self._status(f"⚠ {error.description}\n{error.reason}\n→ {advice}", error=True)
        if announce:
            self.post_message(self.Failed(self, error))

    # Display ----------------------------------------------------------------------------
    def _set_buttons(self, *, running: bool, kept: int) -> None:
        cancel = self.query_one("#download-cancel", Button)
        resume = self.query_one("#download-resume", Button)
        if cancel.display == running and resume.display != running:
            return  # unchanged (a progress report): leave the focus alone
        cancel.display = running
        resume.display = not running
        if not running:
            resume.label = "Resume" if kept else "Download"
        (cancel if running else resume).focus()

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#download-status", Static)
        status.update(Content(printable(text)))  # errors may quote the hub's answers
        status.set_class(error, "error")


def entry_label(entry: Any) -> str:
    """One line about a catalog entry: name, size, quantization and license."""
    return (
        f"{entry.name} · {human_size(entry.size_bytes)} · {entry.quant} · "
        f"{entry.context_length // 1024}k context · {entry.license}"
    )
