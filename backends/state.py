"""Where a session, a platform and the runner stand, and listeners of those states.

A module of its own so that events (which carry states) and sessions (which change
them) both import it, and neither imports the other.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class LLMState(str, enum.Enum):
    """Where a session stands."""

    UNINITIALIZED = "uninitialized"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"
    ERROR = "error"


class PlatformState(str, enum.Enum):
    """Whether a platform (or the runner) is working on a generation: SpeziLLM's
    ``LLMPlatformState`` and ``LLMRunner.State``."""

    IDLE = "idle"
    PROCESSING = "processing"


StateListener = Callable[[PlatformState], None]
"""Called with the new state each time a platform's or the runner's state changes."""


class StateListeners:
    """Listeners of one state: added and removed at any time, called in order.

    A listener runs on the event loop, inside the change (keep it quick, and do not start
    or stop generations from it); one that raises is logged and the others still run.
    """

    def __init__(self) -> None:
        self._listeners: list[StateListener] = []

    def add(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` on every change from now on; returns what removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def notify(self, state: PlatformState) -> None:
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:
                log.exception("a state listener failed")
