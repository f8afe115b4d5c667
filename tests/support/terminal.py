"""The real ``spezichat`` app on a pseudo-terminal, for tests that need a real terminal.

The app runs as a child process (``python -m tui``) with the slave side of a ``pty`` as
its terminal; the test holds the master side: it writes keys there (several in one
``os.write``, as tmux or a pasting terminal does) and a thread collects everything the
app draws. Settings and history come from the XDG directories of the test (see
``tests/conftest.py``), which the child inherits.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "tui"]
LIMIT_S = 60.0
"""How long a step in a real process may take before the test gives up (not a timing test)."""

_ESCAPES = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|.)")


class Terminal:
    """``spezichat`` on a pseudo-terminal, its output drained in a thread.

    ``stdin`` / ``stdout`` replace the terminal for that stream (a pipe, a file), to run
    the app the way a redirect or cron would. With ``controlling``, the pty becomes the
    app's controlling terminal (as in a login or SSH session): :meth:`hang_up` then makes
    the kernel send SIGHUP, as when the SSH connection or the terminal window closes.
    """

    def __init__(
        self,
        args: tuple[str, ...] = (),
        *,
        columns: int = 100,
        rows: int = 30,
        stdin: int | IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = None,
        controlling: bool = False,
    ) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "", "LINES": ""}
        self.process = subprocess.Popen(
            [*ENTRY, *args],
            cwd=ROOT,
            env={key: value for key, value in env.items() if value},
            stdin=slave if stdin is None else stdin,
            stdout=slave if stdout is None else stdout,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_controlling_terminal if controlling else None,
        )
        os.close(slave)
        self.master: int | None = master
        self.output = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, args=(master,), daemon=True)
        self._reader.start()

    def _drain(self, master: int) -> None:
        # Never blocked in read(): closing the master must not wait for the app to write.
        while not self._stop.is_set():
            if not select.select([master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def text(self) -> str:
        """What was written to the terminal, without escape sequences."""
        return _ESCAPES.sub("", self.output.decode("utf-8", "replace"))

    def type(self, keys: str) -> None:
        """Write ``keys`` to the terminal in one write (they arrive in one read)."""
        assert self.master is not None
        os.write(self.master, keys.encode())

    def hang_up(self) -> None:
        """Close the terminal's master side, as sshd does when the connection drops."""
        self._stop.set()
        self._reader.join(timeout=LIMIT_S)
        master, self.master = self.master, None
        if master is not None:
            os.close(master)

    def wait_for(self, condition: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + LIMIT_S
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited before {what}:\n{self.text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never reached: {what}\n{self.text()[-2000:]}")
            time.sleep(0.05)

    def wait_exit(self) -> int:
        """Wait for the app to end; its exit status. All its output is read then."""
        try:
            code = self.process.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the app did not end:\n{self.text()[-2000:]}") from None
        self._reader.join(timeout=LIMIT_S)  # the pty reports EOF once the app is gone
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.hang_up()


def _take_controlling_terminal() -> None:
    """``preexec_fn``: in the child's new session, make its stdin (the pty) the
    controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@contextmanager
def terminal(
    args: tuple[str, ...] = (),
    *,
    stdin: int | IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = None,
    controlling: bool = False,
) -> Iterator[Terminal]:
    term = Terminal(args, stdin=stdin, stdout=stdout, controlling=controlling)
    try:
        yield term
    finally:
        term.close()


def stored_entries(path: Path) -> list[tuple[str, str, bool, str | None]]:
    """(role, content, complete, finish_reason) of every stored entry, read like a reader."""
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            rows = db.execute(
                "SELECT role, content, complete, finish_reason FROM entries ORDER BY seq"
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # not created yet
    return [(role, content, bool(complete), reason) for role, content, complete, reason in rows]
