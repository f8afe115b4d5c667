"""Helpers for tests that run spezichat as a real child process."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` that gives the child the default Ctrl+C (SIGINT) behaviour.

    A shell starts background jobs with SIGINT ignored and children inherit that, in which
    case Python installs no KeyboardInterrupt handler. Tests that interrupt a child with
    SIGINT use this so they test spezichat, not how the test run was launched.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children(pid: int) -> list[int]:
    """Process ids of ``pid``'s children (Linux: /proc/PID/task/*/children)."""
    from pathlib import Path

    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def ended(pid: int, timeout: float = 10.0) -> bool:
    """Whether ``pid`` (anyone's process) is gone or a zombie within ``timeout`` seconds."""
    import time
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
        except (FileNotFoundError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
