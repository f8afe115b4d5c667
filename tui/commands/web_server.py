"""The server of ``spezichat web``: textual-serve's, with access rules and a tab limit.

textual-serve starts one app process per browser tab (its websocket) and relays keys and
screen; everything the page needs comes from textual-serve itself (template, scripts,
fonts). This module adds what a server that can spend the user's API key needs:

- on loopback (the default) only pages of this machine may talk to it: a request whose
  ``Host`` is not a loopback name is refused (DNS rebinding), and so is a request whose
  ``Origin`` is another site (any web page may open a websocket to 127.0.0.1);
- on any other address every request (page, websocket, static files, downloads) must
  carry the random access token, in the URL (``?token=``) or in the cookie that the page
  sets for the websocket and the files it loads; without it: 403;
- at most ``max_sessions`` tabs at once; the next one gets a page that says so (503);
- on Ctrl+C or SIGTERM each tab's app is told to quit (textual-serve's own ``quit``,
  handled like Ctrl+Q: the conversation is saved) and the server waits for them.

Imports textual-serve: only ``tui.commands.web`` imports this module, when it runs.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import logging
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

from backends.errors import LLMError
from tui.commands.common import fail

TOKEN_PARAMETER = "token"
QUIT_WAIT_S = 15.0
"""How long Ctrl+C waits for the apps to save and end before the server exits anyway."""

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")

_FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>spezichat: all sessions in use</title>
<style>body{{background:#0c181f;color:#e8eef2;font-family:sans-serif;margin:4em}}</style>
</head><body>
<h1>All {limit} spezichat sessions are in use</h1>
<p>This server runs at most {limit} browser tabs at once, each with its own app
(<code>spezichat web --max-sessions</code>).</p>
<p>Close another spezichat tab (its conversation is saved), then reload this page.</p>
</body></html>
"""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, an address; IPv6 with or without brackets) is this machine."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _header_host_name(host: str) -> str | None:
    """The name in a ``Host`` header (without the port), or ``None`` if it is malformed."""
    match = _HOST_HEADER.match(host)
    return None if match is None else match.group(1)


class WebServer(Server):
    """textual-serve's :class:`Server` with the access rules and the tab limit above."""

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        url: str,
        token: str | None,
        max_sessions: int,
        open_browser: bool,
    ) -> None:
        super().__init__(command, host=host, port=port, title="spezichat", public_url=url)
        self.url = url
        self.token = token
        self.max_sessions = max_sessions
        self.open_browser = open_browser
        self.cookie_name = f"spezichat-web-{port}"
        self._sessions: set[asyncio.Task[Any]] = set()
        self._announcing: asyncio.Future[None] | None = None

    # -- access ---------------------------------------------------------------------

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` may not be served, or ``None``."""
        name = _header_host_name(request.host)
        if name is None:
            return "The Host header of the request is not a host name."
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return "The request comes from another web site."
        if self.token is None:
            if not is_loopback(name):
                return (
                    "This server answers pages of this machine only (it listens on loopback): "
                    "open it as http://127.0.0.1 or http://localhost."
                )
            return None
        given = request.query.get(TOKEN_PARAMETER) or request.cookies.get(self.cookie_name)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return (
                "This server needs its access token: open the URL that `spezichat web` printed "
                "when it started (it ends in ?token=...)."
            )
        return None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason is not None:
            return web.Response(status=403, text=f"403 Forbidden. {reason}\n")
        return await handler(request)

    # -- routes (textual-serve's, with the limit) -------------------------------------

    def _full(self) -> bool:
        return len(self._sessions) >= self.max_sessions

    async def handle_index(self, request: web.Request) -> web.Response:
        """textual-serve's page, with URLs for the host the browser used."""
        if self._full():
            return web.Response(
                status=503,
                text=_FULL_PAGE.format(limit=self.max_sessions),
                content_type="text/html",
            )
        router = request.app.router
        origin = f"{request.scheme}://{request.host}"
        websocket_scheme = "wss" if request.scheme == "https" else "ws"
        static = f"{origin}{router['static'].url_for(filename='/')}".rstrip("/") + "/"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{websocket_scheme}://{request.host}"
            f"{router['websocket'].url_for()}",
            "config": {"static": {"url": static}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        if self.token is not None:
            # The websocket and the static files carry it from here (same site only).
            response.set_cookie(
                self.cookie_name, self.token, httponly=True, samesite="Strict", path="/"
            )
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: textual-serve starts its app process and relays until the tab closes."""
        if self._full():
            raise web.HTTPServiceUnavailable(
                text=f"All {self.max_sessions} spezichat sessions are in use.\n"
            )
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    # -- life cycle -------------------------------------------------------------------

    def initialize_logging(self) -> None:
        # Plain warnings and errors only: an access log would print the token with each
        # request, and textual-serve's banner is replaced by announce().
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    async def on_startup(self, app: web.Application) -> None:
        # Middlewares are read when the application freezes, right after on_startup.
        app.middlewares.append(self.guard)
        # aiohttp starts listening only after on_startup: announce (and open the browser)
        # once the port takes connections, so whoever reads the URL can use it at once.
        self._announcing = asyncio.ensure_future(self._announce_when_listening())

    async def _announce_when_listening(self) -> None:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = "::1" if host == "::" else host
        for _ in range(500):
            try:
                _reader, writer = await asyncio.open_connection(host, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            break
        self.announce()
        if self.open_browser:
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, webbrowser.open, self.url)

    async def on_shutdown(self, app: web.Application) -> None:
        """Ctrl+C: every tab's app is told to quit (and saves); wait for them to end."""
        sessions = set(self._sessions)
        for task in sessions:
            # textual-serve's handler answers with its stop(): the `quit` message, then
            # it reads the app's output until the process has ended.
            task.cancel()
        if sessions:
            _, pending = await asyncio.wait(sessions, timeout=QUIT_WAIT_S)
            if pending:
                print(
                    f"spezichat web: {len(pending)} app(s) did not end within {QUIT_WAIT_S:.0f} s.",
                    file=sys.stderr,
                    flush=True,
                )

    def announce(self) -> None:
        lines = [f"spezichat web: serving on {self.url}"]
        if self.token is None:
            lines.append("  Only this machine can connect (loopback).")
        else:
            lines.append(
                "  Anyone with this link can use your API key and read your history: "
                "share it with care."
            )
        lines.append(f"  At most {self.max_sessions} tabs at once. Press Ctrl+C to stop.")
        print("\n".join(lines), flush=True)


def _app_command(tools_file: str | None) -> str:
    """The shell command textual-serve runs for each tab: this ``spezichat``'s app."""
    argv = [sys.executable, "-m", "tui"]
    if tools_file:
        argv += ["--tools", str(Path(tools_file).resolve())]
    if os.name != "posix":
        return subprocess.list2cmdline(argv)
    # exec: the app is the process textual-serve started (signals reach it, no shell).
    return "exec " + shlex.join(argv)


def _claim_port(host: str, port: int) -> int:
    """Check that ``host:port`` can be listened on; for port 0, pick a free port."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        if os.name == "posix":  # as aiohttp does: a port in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        chosen: int = probe.getsockname()[1]
        return chosen


def _listen_error(host: str, port: int, error: OSError) -> LLMError:
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return LLMError(
            f"Cannot serve on {where}: the port is in use.",
            reason=str(error),
            suggestion="Stop the program that uses it, or choose another port with --port "
            "(--port 0 picks a free one).",
        )
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return LLMError(
            f"Cannot serve on {where}: not an address of this machine.",
            reason=str(error),
            suggestion="Give --host an address of this machine (see `ip addr`), 0.0.0.0 "
            "for all of them, or leave it out to serve this machine only.",
        )
    return LLMError(
        f"Cannot serve on {where}.",
        reason=str(error),
        suggestion="Check the address and port, or choose others with --host and --port.",
    )


def _own_address(ipv6: bool) -> str:
    """An address of this machine that others on the network can reach (for the URL)."""
    family, probe_address = (
        (socket.AF_INET6, "2001:db8::1") if ipv6 else (socket.AF_INET, "192.0.2.1")
    )
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((probe_address, 9))  # UDP: nothing is sent, the route is looked up
            address: str = probe.getsockname()[0]
            return address
    except OSError:
        return socket.gethostname()


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open: on a wildcard address, this machine's address on the network."""
    shown = _own_address(ipv6=host == "::") if host in _WILDCARDS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?{TOKEN_PARAMETER}={token}" if token else "")


def serve(
    *, host: str, port: int, open_browser: bool, max_sessions: int, tools_file: str | None
) -> int:
    """Run the server until Ctrl+C or SIGTERM; 0 then, 1 if it cannot listen."""
    try:
        port = _claim_port(host, port)
    except OSError as error:
        return fail(_listen_error(host, port, error))
    token = None if is_loopback(host) else secrets.token_urlsafe(32)
    server = WebServer(
        _app_command(tools_file),
        host=host,
        port=port,
        url=page_url(host, port, token),
        token=token,
        max_sessions=max_sessions,
        open_browser=open_browser,
    )
    try:
        server.serve()
    except OSError as error:
        return fail(_listen_error(host, port, error))
    print("spezichat web: stopped.", file=sys.stderr, flush=True)
    return 0
