"""The observable download state (SpeziLLM's LLMLocalDownloadManager) against the
loopback hub: idle → downloading → downloaded, failures, cancel and resume, listeners,
and the Textual panel that only draws a manager's state."""

from __future__ import annotations

import threading

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Button, Static

from backends.local.download import Downloader
from backends.local.download_state import (
    DownloadManager,
    DownloadPhase,
    DownloadState,
)
from backends.local.errors import ChecksumMismatchError, DownloadError
from backends.local.models import HubFile, ModelStore
from tests.local.test_download import payload
from tests.support.hub_server import HubServer
from tests.tui.helpers import wait_until
from tui.widgets.download_panel import DownloadPanel

REPO = "acme/Tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
HUB = HubFile(REPO, FILE)
MB = 1024 * 1024


class Recorder:
    """A listener that keeps every state and the thread that announced it."""

    def __init__(self) -> None:
        self.states: list[DownloadState] = []
        self.threads: set[int] = set()

    def __call__(self, state: DownloadState) -> None:
        self.states.append(state)
        self.threads.add(threading.get_ident())

    def phases(self) -> list[DownloadPhase]:
        """The phases in order, each run of repeats counted once."""
        phases: list[DownloadPhase] = []
        for state in self.states:
            if not phases or phases[-1] is not state.phase:
                phases.append(state.phase)
        return phases

    def progress(self) -> list[int]:
        return [s.progress.downloaded for s in self.states if s.progress is not None]


def manager(store: ModelStore) -> DownloadManager:
    return DownloadManager(HUB, downloader=Downloader(store, progress_interval=0))


def test_idle_downloading_downloaded_on_a_thread(hub: HubServer, store: ModelStore) -> None:
    data = payload(3 * MB + 17)
    sha = hub.add_file(REPO, FILE, data)
    download = manager(store)
    assert download.state == DownloadState(DownloadPhase.IDLE)
    seen = Recorder()
    download.subscribe(seen)

    assert download.start()
    final = download.wait()

    assert seen.phases() == [DownloadPhase.DOWNLOADING, DownloadPhase.DOWNLOADED]
    assert seen.states[0].progress is None  # announced before the hub was asked
    progress = seen.progress()
    assert progress[0] == 0 and progress[-1] == len(data) and progress == sorted(progress)
    fractions = [s.fraction for s in seen.states if s.phase is DownloadPhase.DOWNLOADING]
    assert any(f is not None and 0 < f < 1 for f in fractions)
    assert final is seen.states[-1] and final.fraction == 1.0 and final.result is not None
    assert final.result.sha256 == sha and final.result.path.read_bytes() == data
    assert not download.running
    # The download's own thread announced the progress, not the caller's.
    assert seen.threads - {threading.get_ident()}
    # A new manager for the same file finds it downloaded.
    assert manager(store).state.phase is DownloadPhase.DOWNLOADED


def test_a_bad_hash_fails_and_keeps_nothing(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, payload(MB), corrupt=True)
    download = manager(store)
    seen = Recorder()
    download.subscribe(seen)

    final = download.run()  # on this thread

    assert seen.phases() == [DownloadPhase.DOWNLOADING, DownloadPhase.FAILED]
    assert isinstance(final.error, ChecksumMismatchError) and final.kept == 0
    assert final.fraction is not None and final.fraction == 1.0  # it all arrived, but wrong
    assert not store.path_for(HUB).exists()


def test_a_dropped_connection_fails_and_a_retry_resumes(hub: HubServer, store: ModelStore) -> None:
    data = payload(3 * MB)
    hub.add_file(REPO, FILE, data)
    hub.drop_after = MB
    download = manager(store)
    seen = Recorder()
    download.subscribe(seen)

    failed = download.run()

    assert failed.phase is DownloadPhase.FAILED and isinstance(failed.error, DownloadError)
    assert "interrupted" in failed.error.description
    assert MB <= failed.kept < len(data)
    assert download.start()
    done = download.wait()
    assert seen.phases() == [
        DownloadPhase.DOWNLOADING,
        DownloadPhase.FAILED,
        DownloadPhase.DOWNLOADING,
        DownloadPhase.DOWNLOADED,
    ]
    assert done.result is not None and done.result.resumed_from == failed.kept
    assert done.result.path.read_bytes() == data
    assert hub.cdn_requests()[-1].range == f"bytes={failed.kept}-"


def test_cancel_goes_back_to_idle_and_start_resumes(hub: HubServer, store: ModelStore) -> None:
    data = payload(4 * MB)
    hub.add_file(REPO, FILE, data)
    hub.chunk_delay = 0.002
    download = manager(store)
    seen = Recorder()
    download.subscribe(seen)

    def stop_halfway(state: DownloadState) -> None:
        if state.progress is not None and state.progress.downloaded >= MB:
            download.cancel()  # from a listener, on the download's thread

    unsubscribe = download.subscribe(stop_halfway)
    assert download.start()
    assert not download.start()  # one download at a time
    stopped = download.wait()
    unsubscribe()

    assert stopped.phase is DownloadPhase.IDLE and stopped.stopped
    assert MB <= stopped.kept < len(data)
    assert stopped.kept == store.partial_path(store.path_for(HUB)).stat().st_size
    # A new manager (another process, later) sees what is kept.
    assert manager(store).state == DownloadState(DownloadPhase.IDLE, kept=stopped.kept)

    hub.chunk_delay = 0
    done = download.run()

    assert seen.phases() == [
        DownloadPhase.DOWNLOADING,
        DownloadPhase.IDLE,
        DownloadPhase.DOWNLOADING,
        DownloadPhase.DOWNLOADED,
    ]
    resumed = seen.states[seen.states.index(stopped) + 1]
    assert resumed.phase is DownloadPhase.DOWNLOADING and resumed.kept == stopped.kept
    assert done.result is not None and done.result.resumed_from == stopped.kept
    assert done.result.path.read_bytes() == data


def test_cancel_right_after_start_is_not_lost(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, payload(4 * MB))
    hub.chunk_delay = 0.002
    download = manager(store)

    download.start()
    download.cancel()  # most likely before the download began on its thread
    final = download.wait()

    assert final.phase is DownloadPhase.IDLE and final.stopped
    assert not store.path_for(HUB).exists()


def test_a_failing_listener_neither_stops_the_download_nor_other_listeners(
    hub: HubServer, store: ModelStore
) -> None:
    hub.add_file(REPO, FILE, payload(MB))
    download = manager(store)

    def broken(state: DownloadState) -> None:
        raise RuntimeError("a defect in a listener")

    download.subscribe(broken)
    seen = Recorder()
    unsubscribe = download.subscribe(seen)
    assert download.run().phase is DownloadPhase.DOWNLOADED
    assert seen.phases() == [DownloadPhase.DOWNLOADING, DownloadPhase.DOWNLOADED]
    count = len(seen.states)
    unsubscribe()
    download.run()  # already there: checked against the hub again, unheard
    assert len(seen.states) == count


def test_a_file_name_outside_the_store_is_a_failed_state(store: ModelStore) -> None:
    state = DownloadManager(HubFile(REPO, "../../../escape.gguf"), store).state
    assert state.phase is DownloadPhase.FAILED and state.error is not None
    assert "outside the models directory" in state.error.reason


class PanelApp(App[None]):
    def __init__(self, panel: DownloadPanel) -> None:
        super().__init__()
        self.panel = panel
        self.finished: list[DownloadPanel.Finished] = []
        self.stopped: list[DownloadPanel.Stopped] = []
        self.app_thread = 0

    def compose(self) -> ComposeResult:
        yield self.panel

    def on_mount(self) -> None:
        self.app_thread = threading.get_ident()

    def on_download_panel_finished(self, message: DownloadPanel.Finished) -> None:
        self.finished.append(message)

    def on_download_panel_stopped(self, message: DownloadPanel.Stopped) -> None:
        self.stopped.append(message)


def status(panel: DownloadPanel) -> str:
    return str(panel.query_one("#download-status", Static).render())


@pytest.mark.slow
async def test_the_panel_draws_a_manager_that_the_library_drives(
    hub: HubServer, store: ModelStore
) -> None:
    data = payload(4 * MB)
    hub.add_file(REPO, FILE, data)
    hub.chunk_delay = 0.002
    download = manager(store)
    seen = Recorder()
    download.subscribe(seen)
    panel = DownloadPanel(HUB, store, manager=download)
    app = PanelApp(panel)
    async with app.run_test() as pilot:
        assert "Download" in str(panel.query_one("#download-resume", Button).label)
        halfway = threading.Event()

        def mark(state: DownloadState) -> None:
            if state.phase is DownloadPhase.DOWNLOADING and state.kept >= MB:
                halfway.set()

        download.subscribe(mark)
        download.start()  # by the library, not by the panel
        await wait_until(pilot, lambda: " of " in status(panel), "the progress")
        assert panel.query_one("#download-cancel", Button).display
        await wait_until(pilot, halfway.is_set, "a megabyte")
        download.cancel()
        await wait_until(pilot, lambda: app.stopped, "the stop")
        assert "Stopped" in status(panel) and panel.query_one("#download-resume", Button).display
        assert app.stopped[0].kept == download.state.kept

        hub.chunk_delay = 0
        await pilot.click("#download-resume")  # the panel drives the same manager
        await wait_until(pilot, lambda: app.finished, "the end")
        assert "SHA-256 verified" in status(panel) and "resumed at" in status(panel)
        assert app.finished[0].path.read_bytes() == data
        # The states came from the download's thread; the panel drew them on the app's.
        assert seen.threads - {app.app_thread}
