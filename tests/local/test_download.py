"""Downloads against the loopback hub: progress, resume (in-process and across a killed
process), checksum, missing files, gated repositories, offline mode, disk space."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.local.download import Downloader, DownloadProgress
from backends.local.errors import (
    ChecksumMismatchError,
    DownloadCancelledError,
    GatedModelError,
    InsufficientDiskSpaceError,
    OfflineError,
    RemoteFileNotFoundError,
)
from backends.local.models import HubFile, ModelStore
from tests.support.hub_server import HubServer

ROOT = Path(__file__).resolve().parents[2]
REPO = "acme/Tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
MB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic, incompressible test bytes (a GGUF header is not needed to download)."""
    block = hashlib.sha256(str(seed).encode()).digest()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


def test_full_download_reports_progress_and_verifies(hub: HubServer, store: ModelStore) -> None:
    data = payload(3 * MB + 123)
    sha = hub.add_file(REPO, FILE, data)
    reports: list[DownloadProgress] = []

    result = Downloader(store, progress_interval=0).download(HubFile(REPO, FILE), reports.append)

    assert result.path == store.path_for(HubFile(REPO, FILE))
    assert result.path.read_bytes() == data
    assert (result.sha256, result.size, result.fetched, result.resumed_from) == (
        sha,
        len(data),
        len(data),
        0,
    )
    assert not store.partial_path(result.path).exists()
    assert [r.downloaded for r in reports] == sorted(r.downloaded for r in reports)
    assert reports[0].downloaded == 0 and reports[-1].downloaded == len(data)
    assert all(r.total == len(data) for r in reports)
    assert reports[-1].fraction == 1.0 and reports[-1].rate > 0 and reports[-1].eta == 0
    assert store.read_meta(result.path)["sha256"] == sha
    # The file was listed under the models directory with its hub name.
    [installed] = store.installed()
    assert (installed.repo_id, installed.filename, installed.sha256) == (REPO, FILE, sha)


def test_already_downloaded_is_not_fetched_again(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, payload(MB))
    downloader = Downloader(store)
    downloader.download(HubFile(REPO, FILE))
    gets = len(hub.cdn_requests())

    again = downloader.download(HubFile(REPO, FILE))

    assert again.already_present and again.fetched == 0
    assert len(hub.cdn_requests()) == gets


def test_cancel_keeps_partial_and_resume_fetches_only_the_rest(
    hub: HubServer, store: ModelStore
) -> None:
    data = payload(5 * MB)
    hub.add_file(REPO, FILE, data)
    hub.chunk_delay = 0.002
    downloader = Downloader(store, progress_interval=0)

    def cancel_after_two_mb(progress: DownloadProgress) -> None:
        if progress.downloaded >= 2 * MB:
            downloader.cancel()

    with pytest.raises(DownloadCancelledError):
        downloader.download(HubFile(REPO, FILE), cancel_after_two_mb)
    kept = downloader.partial_size(HubFile(REPO, FILE))
    assert 2 * MB <= kept < len(data)
    assert not store.path_for(HubFile(REPO, FILE)).exists()

    hub.chunk_delay = 0
    result = Downloader(store).download(HubFile(REPO, FILE))

    assert result.resumed_from == kept and result.fetched == len(data) - kept
    assert result.path.read_bytes() == data
    last = hub.cdn_requests()[-1]
    assert last.range == f"bytes={kept}-" and last.body_bytes == len(data) - kept


def test_killed_process_resumes_after_restart(hub: HubServer, tmp_path: Path) -> None:
    """kill -9 a `spezichat download` halfway, run it again: only the rest is fetched."""
    data = payload(8 * MB, seed=2)
    sha = hub.add_file(REPO, FILE, data)
    hub.chunk_delay = 0.02  # about 3 MB/s, so the transfer is caught halfway
    store = ModelStore()  # the platformdirs default, under the test's XDG_DATA_HOME
    target = store.path_for(HubFile(REPO, FILE))
    partial = store.partial_path(target)
    command = [sys.executable, "-m", "tui", "download", f"{REPO}:{FILE}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size >= 2 * MB):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
    assert first.returncode == -signal.SIGKILL
    kept = partial.stat().st_size
    assert 2 * MB <= kept < len(data)
    assert not target.exists()

    hub.chunk_delay = 0
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == str(target)
    assert "Resumed" in second.stderr and "SHA-256 verified" in second.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha
    assert not partial.exists()
    resumed = hub.cdn_requests()[-1]
    assert resumed.range == f"bytes={kept}-"
    assert resumed.body_bytes == len(data) - kept


def test_partial_of_an_older_version_is_discarded(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, payload(3 * MB, seed=3))
    downloader = Downloader(store, progress_interval=0)

    def cancel_soon(progress: DownloadProgress) -> None:
        if progress.downloaded >= MB:
            downloader.cancel()

    hub.chunk_delay = 0.002
    with pytest.raises(DownloadCancelledError):
        downloader.download(HubFile(REPO, FILE), cancel_soon)
    hub.chunk_delay = 0
    newer = payload(3 * MB, seed=4)
    hub.add_file(REPO, FILE, newer)  # the repository was updated meanwhile

    result = downloader.download(HubFile(REPO, FILE))

    assert result.resumed_from == 0 and result.path.read_bytes() == newer
    assert hub.cdn_requests()[-1].range is None


def test_checksum_mismatch_removes_the_file(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, payload(MB), corrupt=True)

    with pytest.raises(ChecksumMismatchError) as caught:
        Downloader(store).download(HubFile(REPO, FILE))

    target = store.path_for(HubFile(REPO, FILE))
    assert not target.exists() and not store.partial_path(target).exists()
    assert "SHA-256" in caught.value.reason and caught.value.suggestion


def test_missing_file_and_missing_repository(hub: HubServer, store: ModelStore) -> None:
    hub.add_file(REPO, FILE, b"GGUF")
    downloader = Downloader(store)

    with pytest.raises(RemoteFileNotFoundError) as missing_file:
        downloader.download(HubFile(REPO, "other.gguf"))
    with pytest.raises(RemoteFileNotFoundError) as missing_repo:
        downloader.download(HubFile("nobody/nothing", FILE))

    assert "other.gguf" in missing_file.value.description
    assert "nobody/nothing" in missing_repo.value.description
    assert not hub.cdn_requests()


def test_gated_repository_needs_a_token(
    hub: HubServer, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(MB)
    hub.add_file("meta/Gated-GGUF", FILE, data, gated=True)
    gated = HubFile("meta/Gated-GGUF", FILE)

    with pytest.raises(GatedModelError) as anonymous:
        Downloader(store).download(gated)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(GatedModelError) as wrong:
        Downloader(store).download(gated)

    assert "HF_TOKEN" in anonymous.value.suggestion
    assert "401" in anonymous.value.reason and "403" in wrong.value.reason
    assert not hub.cdn_requests()

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    result = Downloader(store).download(gated)

    assert result.path.read_bytes() == data
    head = [r for r in hub.requests if r.method == "HEAD"][-1]
    assert head.authorization == "Bearer hf_test_token"
    # The hub redirects to a different host (the CDN): the token must not go there.
    assert all(r.authorization is None for r in hub.cdn_requests())


def test_offline_mode(hub: HubServer, store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_file(REPO, FILE, payload(MB))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(OfflineError):
        Downloader(store).download(HubFile(REPO, FILE))
    assert not hub.requests

    monkeypatch.delenv("HF_HUB_OFFLINE")
    Downloader(store).download(HubFile(REPO, FILE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    present = Downloader(store).download(HubFile(REPO, FILE))
    assert present.already_present


def test_not_enough_disk_space(hub: HubServer, store: ModelStore) -> None:
    # The hub announces a file larger than any test machine's free space.
    hub.add_file(REPO, FILE, payload(1024), advertised_size=1 << 60)

    with pytest.raises(InsufficientDiskSpaceError) as caught:
        Downloader(store).download(HubFile(REPO, FILE))

    assert "free" in caught.value.reason
    assert not hub.cdn_requests()


def test_cli_download_list_and_delete(hub: HubServer) -> None:
    data = payload(MB, seed=5)
    hub.add_file(REPO, FILE, data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def spezichat(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui", *args], env=env, capture_output=True, text=True
        )

    done = spezichat("download", f"{REPO}:{FILE}")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.read_bytes() == data and "SHA-256 verified" in done.stderr

    listed = spezichat("download", "--list")
    assert f"{REPO}:{FILE}" in listed.stdout

    gone = spezichat("download", "--delete", f"{REPO}:{FILE}")
    assert gone.returncode == 0 and not path.exists()

    missing = spezichat("download", f"{REPO}:absent.gguf")
    assert missing.returncode == 1
    assert "error: absent.gguf was not found" in missing.stderr
