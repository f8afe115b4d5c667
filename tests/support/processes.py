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
