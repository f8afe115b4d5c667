"""Work the first reply would do on the event loop, done on a thread while the user types.

Measured here, the first reply after start-up stalled the app for 150-175 ms at once:
the HTTP stack (httpcore, h11, anyio) is imported when the first request goes out, and
Pygments compiles a lexer's rules the first time a code block in that language is drawn
(20-60 ms per language). A thread does both soon after the chat screen is up. It holds
the GIL for at most the interpreter's switch interval (5 ms) at a time, so the screen
stays responsive meanwhile. Failures are ignored: the first reply then does the work.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping

from tui.backends import HTTP_MODULES, REGISTRY


class _WarmUpModules(Mapping[str, tuple[str, ...]]):
    """Each registered backend's ``warm_up`` modules, looked up when asked for."""

    def __getitem__(self, backend: str) -> tuple[str, ...]:
        return REGISTRY[backend].warm_up

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


MODULES: Mapping[str, tuple[str, ...]] = _WarmUpModules()
"""Modules to import per backend (``Backend.warm_up``; the on-device backend loads its
model on a thread of its own)."""

LANGUAGES = ("python", "bash", "json", "javascript")
"""Code-block languages whose lexers are prepared: the most common in replies."""


def warm_up(backend: str, languages: Iterable[str] = LANGUAGES) -> list[str]:
    """Import what ``backend`` needs and prepare the lexers; returns what failed."""
    failed: list[str] = []
    for name in MODULES.get(backend, ()):
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional module: the first reply will tell
            failed.append(name)
    from tui.widgets.reply import prepare_lexers

    failed += prepare_lexers(languages)
    return failed


__all__ = ["HTTP_MODULES", "LANGUAGES", "MODULES", "warm_up"]
