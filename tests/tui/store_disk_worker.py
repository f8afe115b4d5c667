"""The app on a small, real file system that fills up (run by test_store_faults.py).

``python -m tests.tui.store_disk_worker DIR`` keeps the history in DIR (a small tmpfs the
test mounted there), has one exchange, fills DIR to the last byte, has a second exchange
(its writes fail with the kernel's ENOSPC), frees the space, has a third one and prints
a JSON report: what was stored while the disk was full, what the app showed, and the
stored conversation at the end.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sys
from pathlib import Path
from typing import Any

from backends.runner import Runner
from tests.tui.helpers import SIZE, chat, items, replies, send, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import ErrorItem, NoticeItem


def fill(path: Path) -> int:
    """Write ``path`` until the file system has no room left; returns its size."""
    written = 0
    with path.open("wb", buffering=0) as filler:
        for size in (65536, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    written += filler.write(block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return written


def waiting(screen: Any) -> int:
    """Changes the app has not saved yet (0 for an app that keeps none)."""
    writer = getattr(screen, "writer", None)
    return int(writer.pending) if writer is not None else 0


def stored(store: Store) -> list[list[str]]:
    conversations = store.list_conversations()
    if not conversations:
        return []
    context = store.load_context(conversations[0].id)
    return [[e.role.value, e.content] for e in context if e.role.value != "system"]


async def run(disk: Path) -> dict[str, Any]:
    settings = Settings()
    settings.general.backend = "mock"
    settings.general.model = "mock"
    report: dict[str, Any] = {}
    with Store(disk / "history.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            screen = chat(pilot)
            await send(pilot, "First question")
            report["filler"] = fill(disk / "filler")
            await send(pilot, "Second question, disk full")
            shown = lambda: [item for item in items(pilot) if isinstance(item, ErrorItem)]  # noqa: E731
            await wait_until(pilot, shown, "the failure shown")
            report["pending"] = waiting(screen)
            report["stored_while_full"] = stored(store)
            report["errors"] = [
                item.error.to_dict() for item in items(pilot) if isinstance(item, ErrorItem)
            ]
            (disk / "filler").unlink()
            await send(pilot, "Third question")
            await wait_until(pilot, lambda: not waiting(screen), "everything saved")
            await pilot.pause()
            report["replies"] = [reply.text for reply in replies(pilot)]
            report["notices"] = [item.text for item in items(pilot) if isinstance(item, NoticeItem)]
        report["stored"] = stored(store)
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Path(sys.argv[1])))))
