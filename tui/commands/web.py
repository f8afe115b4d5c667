"""``spezichat web``: the very same app in a browser tab, served by textual-serve.

Each tab gets its own ``spezichat`` process (same settings, history, backends and keys)
that textual-serve runs with Textual's web driver; closing the tab quits that process the
way Ctrl+Q does, so the conversation is saved. The server listens on loopback only unless
``--host`` names another address, and then every request must carry a random access token
(printed once, in the URL). The server itself is in :mod:`tui.commands.web_server`, which
imports textual-serve: it is the optional extra ``spezichat[web]``.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 4


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535 (0: any free port), not {value}")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "web",
        help="serve the app to a web browser (needs the extra spezichat[web])",
        description=(
            "Serve the spezichat app to a web browser with textual-serve: each browser tab "
            "runs its own app with your settings, history and keys; closing the tab saves "
            "and ends it. By default only this machine can connect (127.0.0.1). With --host "
            "on another address, anyone who can reach it could use your API key and read "
            "your history, so a random access token is then required: it is part of the "
            "URL printed at the start. Ctrl+C stops the server and every app it started. "
            "Needs: pip install 'spezichat[web]'. Exit codes: 0 stopped, 1 failure, 2 usage."
        ),
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="ADDR",
        help="address to listen on (default: %(default)s, this machine only; any other "
        "address requires the access token; 0.0.0.0: all addresses)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on (default: %(default)s; 0: any free port)",
    )
    parser.add_argument(
        "--open", action="store_true", help="open the page in the default web browser"
    )
    parser.add_argument(
        "--max-sessions",
        type=_positive,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help="browser tabs served at once, each one app process (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from backends.errors import LLMError
    from tui.commands.common import fail

    try:
        from tui.commands import web_server
    except ImportError as error:
        if error.name is None or not error.name.startswith(("textual_serve", "aiohttp")):
            raise
        return fail(
            LLMError(
                "spezichat web needs the package textual-serve.",
                reason=f"It is an optional part of spezichat and is not installed "
                f"(no module named {error.name!r}).",
                suggestion="Install it with: pip install 'spezichat[web]'",
            )
        )
    return web_server.serve(
        host=args.host,
        port=args.port,
        open_browser=bool(args.open),
        max_sessions=args.max_sessions,
        tools_file=getattr(args, "tools", None),
    )
