"""The edges of a download's transfer: checking the file server's answer to a (range)
request, saying what a failed disk write means, and getting the bytes onto the disk.

Split from :mod:`backends.local.download`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from backends.local.errors import (
    DownloadError,
    GatedModelError,
    InsufficientDiskSpaceError,
    RemoteFileNotFoundError,
)
from backends.local.models import HubFile, ModelStore

if TYPE_CHECKING:
    from backends.local.download import RemoteFile


def check_response(remote: RemoteFile, response: Any, start: int) -> None:
    """Raise what an unusable answer to the (range) request means."""
    status = response.status_code
    if status in (200, 206):
        if status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {start}-"):
                raise DownloadError(
                    reason=f"The server sent the wrong byte range ({content_range}).",
                )
        return
    if status in (401, 403):
        raise GatedModelError(
            f"Access to {remote.hub.repo_id} was refused.",
            reason=f"The file server answered {status}.",
        )
    if status == 404:
        raise RemoteFileNotFoundError(reason=f"The file server answered 404 for {remote.url}.")
    if status == 416:
        raise DownloadError(
            reason="The server refused to resume the partial file (416).",
            suggestion="Delete the partial file (`ModelStore.delete`) and download again.",
        )
    raise DownloadError(reason=f"The file server answered HTTP {status}.")


def disk_error(store: ModelStore, exc: OSError, hub: HubFile, size: int | None) -> DownloadError:
    """What a failed read or write of the model's files means, and what to do."""
    from backends.local.catalog import human_size

    target = store.path_for(hub)
    partial = store.partial_path(target)
    where = Path(exc.filename or partial)
    try:
        kept = partial.stat().st_size if partial.is_file() else 0
    except OSError:
        kept = 0
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        more = f"at least {human_size(size - kept)}" if size is not None else "space"
        there = "there" if where == partial else f"in {partial}"
        return InsufficientDiskSpaceError(
            "The disk filled up during the download.",
            reason=(
                f"{exc.strerror} while writing {where}. The {human_size(kept)} that "
                f"arrived are kept {there}; no model file was created."
            ),
            suggestion=(
                f"Free {more} on that disk (delete models you no longer use, or other "
                "files), then run the download again; it resumes where it stopped."
            ),
        )
    if exc.errno == errno.EFBIG:
        # The file can never be completed there: its part only takes up space.
        partial.unlink(missing_ok=True)
        store.meta_path(partial).unlink(missing_ok=True)
        return DownloadError(
            "The model file is too large for this file system.",
            reason=(
                f"{exc.strerror} while writing {where} at {human_size(kept)}: the file "
                "system (FAT32 holds at most 4 GiB per file) or a file size limit does "
                "not allow a file this large. The partial file was removed."
            ),
            suggestion=(
                "Keep the models in a folder on another file system (ext4, APFS, NTFS, "
                "exFAT; `ModelStore(root)`), then download again."
            ),
        )
    return DownloadError(
        "The model file could not be written.",
        reason=f"{exc.strerror or exc} ({where}).",
        suggestion=(
            f"Check that {target.parent} is writable and the disk is healthy, or keep "
            "the models in another folder (`ModelStore(root)`); then run the download "
            "again."
        ),
    )


def flush(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())


def start_writeback(out: IO[bytes], offset: int, length: int) -> None:
    """Have the kernel start writing a range of the file to disk now, without waiting.

    On Linux, POSIX_FADV_DONTNEED starts the writeback of the range's dirty pages (they
    stay cached while they are written), so the fsync before the rename finds little
    left to write: 9 ms instead of 73 ms for 256 MiB here. Elsewhere it does nothing.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        out.flush()
        with contextlib.suppress(OSError):
            advise(out.fileno(), offset, length, os.POSIX_FADV_DONTNEED)
