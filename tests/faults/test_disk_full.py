"""The disk fills up, or refuses a large file, in the middle of a model download.

No model file may appear, what arrived stays resumable (or is removed when it can never
be completed there), and the error says what happened and what to do. Three ways in:

* a real small file system (a tmpfs mounted in a private mount namespace) that another
  writer fills halfway: the kernel's own ENOSPC (skipped where namespaces are not
  allowed);
* a real per-process file size limit (RLIMIT_FSIZE) on ``spezichat download``: the
  kernel's EFBIG, as on a FAT32 disk with a model over 4 GiB;
* a write hook at the file-object boundary that answers ENOSPC after a budget, so the
  ENOSPC path is covered on every machine.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backends.local.download import Downloader
from backends.local.errors import InsufficientDiskSpaceError
from backends.local.models import HubFile, ModelStore
from tests.support.hub_server import HubServer

ROOT = Path(__file__).resolve().parents[2]
REPO = "acme/Tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
MiB = 1024 * 1024
WORKER = "tests.faults.disk_worker"


def payload(size: int, seed: int) -> bytes:
    """Deterministic, incompressible bytes standing in for a GGUF file."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    blocks = (hashlib.sha256(digest + n.to_bytes(8, "little")).digest() for n in range(size))
    return b"".join(next(blocks) for _ in range(-(-size // 32)))[:size]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def small_filesystem_available(tmp_path: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a private namespace here (None when it can)."""
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return "needs Linux and unshare(1)"
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(probe)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


def test_a_small_disk_filling_up_midway(hub: HubServer, tmp_path: Path) -> None:
    why = small_filesystem_available(tmp_path)
    if why is not None:
        pytest.skip(why)
    data = payload(8 * MiB, seed=11)
    sha = hub.add_file(REPO, FILE, data)
    disk = tmp_path / "disk"
    disk.mkdir()
    # The download's own check wants the file plus a 64 MiB margin free: 80 MiB passes it.
    script = 'mount -t tmpfs -o size=80m tmpfs "$0" && exec "$1" -m "$2" "$0" "$3"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, str(disk), sys.executable, WORKER, f"{REPO}:{FILE}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["filler"] > 60 * MiB  # the other program got the rest of the disk
    error = report["error"]
    assert error["type"] == "InsufficientDiskSpaceError"
    assert error["description"] == "The disk filled up during the download."
    assert "No space left on device while writing" in error["reason"]
    assert "that arrived are kept there" in error["reason"]
    assert "no model file was created" in error["reason"]
    assert "Free at least" in error["suggestion"] and "resumes" in error["suggestion"]
    # No model file; the partial file holds exactly the first bytes of the model.
    assert not report["target_exists"]
    kept = report["partial_size"]
    assert 2 * MiB <= kept < len(data)
    assert report["partial_sha256"] == hashlib.sha256(data[:kept]).hexdigest()
    assert not [f for f in report["files"] if f.endswith(".gguf")]
    # With space again, the download resumes where it stopped and verifies.
    resumed = report["resumed"]
    assert resumed["resumed_from"] == kept and resumed["fetched"] == len(data) - kept
    assert resumed["sha256"] == sha and not resumed["partial_left"]
    assert hub.cdn_requests()[-1].range == f"bytes={kept}-"


LIMITED = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.argv = ["spezichat", *sys.argv[2:]]
runpy.run_module("tui", run_name="__main__")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics")
def test_a_file_larger_than_the_file_system_allows(hub: HubServer) -> None:
    hub.add_file(REPO, FILE, payload(4 * MiB, seed=12))
    store = ModelStore()  # the platformdirs default, under the test's XDG_DATA_HOME
    target = store.path_for(HubFile(REPO, FILE))

    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(MiB), "download", f"{REPO}:{FILE}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: The model file is too large for this file system." in done.stderr
    assert "File too large" in done.stderr and "models_dir" in done.stderr
    assert done.stdout == ""
    # It can never be completed there, so nothing is left taking up the space.
    assert not target.exists() and not store.partial_path(target).exists()
    assert not store.meta_path(store.partial_path(target)).exists()


class _SmallDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left: short writes, then ENOSPC, as the kernel."""

    room = 0

    def write(self, data: Any) -> int:
        left = self.room - os.fstat(self.fileno()).st_size
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
        return super().write(memoryview(data)[:left])


def test_enospc_from_a_write_hook(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(3 * MiB + 5, seed=13)
    sha = hub.add_file(REPO, FILE, data)
    store = ModelStore(tmp_path / "models")
    hubfile = HubFile(REPO, FILE)
    partial = store.partial_path(store.path_for(hubfile))
    real_open = Path.open
    room = MiB + 1000

    def open_on_small_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self == partial and mode in ("wb", "ab"):
            raw = _SmallDisk(str(self), mode[0])
            raw.room = room
            return io.BufferedWriter(raw)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_small_disk)
    with pytest.raises(InsufficientDiskSpaceError) as caught:
        Downloader(store).download(hubfile)

    assert caught.value.description == "The disk filled up during the download."
    assert f"writing {partial}. The 1.0 MB that arrived are kept there" in caught.value.reason
    assert partial.read_bytes() == data[:room]
    assert not store.path_for(hubfile).exists()

    room = len(data)  # space was freed
    result = Downloader(store).download(hubfile)
    assert (result.resumed_from, result.sha256) == (MiB + 1000, sha)
    assert result.path.read_bytes() == data
