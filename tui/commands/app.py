"""Start the terminal app (``spezichat`` with no command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.functions import Tool


def run_app(args: argparse.Namespace) -> int:
    """Build settings, the history store and the runner, then run the app."""
    from tui.commands.common import fail, load_settings

    settings = load_settings()
    if settings is None:
        return 1

    from backends.errors import LLMError
    from backends.runner import Runner
    from tui.store import Store

    tools_file = getattr(args, "tools", None)
    try:
        tools = _load_tools(tools_file) if tools_file else ()
        store = Store.open_default()
    except LLMError as error:
        return fail(error)

    from tui.app import SpeziChatApp

    try:
        app = SpeziChatApp(
            settings=settings,
            store=store,
            runner=Runner(),
            force_onboarding=bool(getattr(args, "onboarding", False)),
            tools=tools,
        )
        app.run()
    finally:
        store.close()
    return app.return_code or 0


def _load_tools(path: str) -> tuple[Tool, ...]:
    from pathlib import Path

    from backends.functions import load_tools

    return tuple(load_tools(Path(path)))
