"""A download of an on-device model, shown as a progress bar with cancel and resume.

:class:`DownloadPanel` runs :class:`backends.local.download.Downloader` in a thread
worker and reports back with messages: :class:`DownloadPanel.Finished` (the file is
complete and verified), :class:`DownloadPanel.Stopped` (cancelled: the partial file is
kept, :meth:`DownloadPanel.start` resumes) and :class:`DownloadPanel.Failed` (an
``LLMError``, shown as what/why/what to do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, ProgressBar, Static

from backends.errors import LLMError
from backends.local.catalog import human_size
from backends.local.download import Downloader, DownloadProgress
from backends.local.models import HubFile, ModelStore
from backends.untrusted import printable


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
        self, hub: HubFile, store: ModelStore, *, autostart: bool = False, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.store = store
        self.downloader = Downloader(store)
        self.running = False
        self.autostart = autostart
        """Start downloading as soon as the panel is mounted."""

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, id="download-bar")
        yield Static("", classes="download-status", id="download-status")
        with Horizontal():
            yield Button("Cancel", id="download-cancel", variant="warning")
            yield Button("Resume", id="download-resume", variant="primary")

    def on_mount(self) -> None:
        kept = self.downloader.partial_size(self.hub)
        self._set_buttons(running=False)
        if kept:
            self._status(f"{human_size(kept)} from an earlier download will be kept.")
        if self.autostart:
            self.start()

    # Control ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start, or resume, the download."""
        if self.running:
            return
        self.running = True
        self._set_buttons(running=True)
        self._status("Asking the hub for the file…")
        self._download()

    def cancel(self) -> None:
        """Stop after the current chunk; what arrived is kept for resuming."""
        if self.running:
            self._status("Stopping…")
            self.downloader.cancel()

    @on(Button.Pressed, "#download-cancel")
    def _cancel_pressed(self) -> None:
        self.cancel()

    @on(Button.Pressed, "#download-resume")
    def _resume_pressed(self) -> None:
        self.start()

    # The worker -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="local-download")
    def _download(self) -> None:
        from backends.local.errors import DownloadCancelledError

        try:
            result = self.downloader.download(self.hub, progress=self._from_thread)
        except DownloadCancelledError:
            kept = self.downloader.partial_size(self.hub)
            self.app.call_from_thread(self._stopped, kept)
        except LLMError as error:
            self.app.call_from_thread(self._failed, error)
        else:
            self.app.call_from_thread(self._finished, result.path, result.resumed_from)

    def _from_thread(self, progress: DownloadProgress) -> None:
        self.app.call_from_thread(self._show, progress)

    def _show(self, progress: DownloadProgress) -> None:
        bar = self.query_one("#download-bar", ProgressBar)
        bar.update(total=progress.total, progress=progress.downloaded)
        self._status(describe_progress(progress))

    def _finished(self, path: Path, resumed_from: int) -> None:
        self.running = False
        bar = self.query_one("#download-bar", ProgressBar)
        size = path.stat().st_size
        bar.update(total=size, progress=size)
        how = f" (resumed at {human_size(resumed_from)})" if resumed_from else ""
        self._status(f"✓ Downloaded {human_size(size)}{how}; SHA-256 verified.")
        self.query_one("#download-cancel", Button).display = False
        self.query_one("#download-resume", Button).display = False
        self.post_message(self.Finished(self, path, resumed_from))

    def _stopped(self, kept: int) -> None:
        self.running = False
        self._set_buttons(running=False)
        self._status(f"Stopped. {human_size(kept)} kept; Resume continues where it stopped.")
        self.post_message(self.Stopped(self, kept))

    def _failed(self, error: LLMError) -> None:
        self.running = False
        self._set_buttons(running=False)
        self.query_one("#download-resume", Button).label = "Retry"
        self._status(f"⚠ {error.description}\n{error.reason}\n→ {error.suggestion}", error=True)
        self.post_message(self.Failed(self, error))

    # Display ----------------------------------------------------------------------------
    def _set_buttons(self, *, running: bool) -> None:
        cancel = self.query_one("#download-cancel", Button)
        resume = self.query_one("#download-resume", Button)
        cancel.display = running
        resume.display = not running
        if self.downloader.partial_size(self.hub) or not running:
            resume.label = "Resume" if self.downloader.partial_size(self.hub) else "Download"
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
