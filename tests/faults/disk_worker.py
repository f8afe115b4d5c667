"""Downloads onto a small file system that fills up halfway (run by test_disk_full.py).

``python -m tests.faults.disk_worker DIR`` runs inside a private mount namespace where
DIR is a freshly mounted tmpfs with a few MiB to spare beyond what the download needs.
Once 2 MiB of the model have arrived, it fills the rest of the disk with another file
(another program using up the space), so the download's next write fails with the
kernel's ENOSPC. Then it frees the space and downloads again. It prints what happened
as JSON; ``HF_ENDPOINT`` points at the test's loopback hub.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from backends.errors import LLMError
from backends.local.download import Downloader, DownloadProgress
from backends.local.models import HubFile, ModelStore

MiB = 1024 * 1024


def fill(path: Path) -> int:
    """Write ``path`` until the disk is full; returns its size."""
    block = b"\0" * MiB
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return path.stat().st_size


def main(root: Path, spec: str) -> dict[str, Any]:
    repo_id, filename = spec.split(":")
    hub = HubFile(repo_id, filename)
    store = ModelStore(root / "models")
    filler = root / "other-program.bin"
    report: dict[str, Any] = {}

    def fill_halfway(progress: DownloadProgress) -> None:
        if progress.downloaded >= 2 * MiB and "filler" not in report:
            report["filler"] = fill(filler)

    target = store.path_for(hub)
    partial = store.partial_path(target)
    try:
        Downloader(store, progress_interval=0).download(hub, fill_halfway)
    except LLMError as error:
        report["error"] = {
            "type": type(error).__name__,
            "description": error.description,
            "reason": error.reason,
            "suggestion": error.suggestion,
        }
    report["target_exists"] = target.exists()
    report["partial_size"] = partial.stat().st_size if partial.exists() else None
    if partial.exists():
        report["partial_sha256"] = hashlib.sha256(partial.read_bytes()).hexdigest()
    report["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    filler.unlink()
    result = Downloader(store).download(hub)
    report["resumed"] = {
        "resumed_from": result.resumed_from,
        "fetched": result.fetched,
        "sha256": hashlib.sha256(result.path.read_bytes()).hexdigest(),
        "partial_left": partial.exists(),
    }
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2])))
