"""Start the terminal app (``spezichat`` with no command)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.functions import Tool

EXIT_NO_TERMINAL = 2

WEB_DRIVER = "textual.drivers.web_driver:WebDriver"
"""The ``TEXTUAL_DRIVER`` that textual-serve sets for the app processes it starts."""

_NOT_A_TERMINAL = (
    (0, "standard input is not a terminal (a pipe, a file or /dev/null): no keys arrive"),
    (1, "standard output is not a terminal (a file or a pipe): there is no screen to draw on"),
    (2, "standard error is not a terminal (a file or a pipe): the app draws its screen there"),
)


def terminal_problem() -> str | None:
    """Why the app cannot run here (no terminal to read keys from or draw on), or ``None``.

    Without this check ``echo hi | spezichat``, a cron job or ``spezichat > out.txt``
    never ends: the app waits for keys that cannot come, writing escape codes meanwhile.
    """
    if os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER:
        # `spezichat web` (textual-serve) runs the app with pipes for its streams and this
        # driver, which speaks textual-serve's protocol on them: keys and screen are there.
        return None
    problems = [text for fd, text in _NOT_A_TERMINAL if not os.isatty(fd)]
    if not problems:
        return None
    reason = "; ".join(problems)
    return reason[0].upper() + reason[1:] + "."


def run_app(args: argparse.Namespace) -> int:
    """Build settings, the history store and the runner, then run the app."""
    from tui.commands.common import fail, load_settings

    problem = terminal_problem()
    if problem is not None:
        from backends.errors import LLMError

        fail(
            LLMError(
                "spezichat needs a terminal; use `spezichat ask` in pipes.",
                reason=problem,
                suggestion="Start spezichat in a terminal window. In scripts and pipes, "
                'ask with `spezichat ask`, for example: echo "question" | spezichat ask',
            )
        )
        return EXIT_NO_TERMINAL

    settings = load_settings(warn_on_stderr=False)  # the app shows the notice
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
