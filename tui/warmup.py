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
from collections.abc import Iterable

HTTP_MODULES = ("httpx", "httpcore", "h11", "httpx_sse", "anyio", "anyio._backends._asyncio")
"""What the first request of an HTTP backend imports."""

_OPENAI_API = (*HTTP_MODULES, "backends.openai.client", "backends.openai.sse")

MODULES: dict[str, tuple[str, ...]] = {"openai": _OPENAI_API, "fog": _OPENAI_API}
"""Modules to import per backend (the on-device backend loads its model on a thread)."""

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


__all__ = ["LANGUAGES", "MODULES", "warm_up"]
