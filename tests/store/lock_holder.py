"""Another process holding the history's write lock (``BEGIN IMMEDIATE``) until told.

``python -m tests.store.lock_holder DB`` takes the lock, prints ``locked``, waits for a
line on stdin, then commits and prints ``released``. :class:`LockHolder` runs it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]


class LockHolder:
    """``with LockHolder(path):`` the database is write-locked by another process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LockHolder:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.store.lock_holder", str(self.path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == "locked", f"the lock holder said {line!r}"
        return self

    def holding(self) -> bool:
        """True while the other process still holds the lock (it waits for us)."""
        return self.process is not None and self.process.poll() is None

    def release(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write("release\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "released"
        finally:
            process.stdin.close()
            process.stdout.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck holder
                process.kill()
                process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def main() -> None:
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()
    db.execute("COMMIT")
    db.close()
    print("released", flush=True)


if __name__ == "__main__":
    main()
