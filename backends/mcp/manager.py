"""The MCP servers of one app or command: started lazily on a thread of their own.

:class:`McpManager` is safe to use from any thread and any event loop. Nothing starts
until :meth:`McpManager.start` is called (the app calls it when the first chat needs
tools, ``spezichat ask`` before its request), and nothing of the SDK is imported before:
the servers run on one daemon thread with its own event loop, so importing the SDK (most
of a second), starting processes and decoding messages never stall the app's screen.

Every server is in one :class:`ServerState`. A server that cannot start is ``FAILED``
with a typed error (:mod:`backends.mcp.errors`) and the others go on; one that crashes
during a call fails that call with an error result for the model and becomes ``FAILED``.
A server's stderr goes to its log file (``mcp-NAME.log`` in the log directory), never to
the terminal. :meth:`close` ends every server that was started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from backends.errors import LLMError
from backends.functions import Tool, ToolResult
from backends.mcp.config import McpServerConfig
from backends.mcp.errors import McpConfigError, McpCrashError, McpError
from backends.mcp.tools import McpTool, RemoteTool, assign_names, sanitize

if TYPE_CHECKING:
    from backends.mcp.connection import Connection

T = TypeVar("T")
log = logging.getLogger(__name__)

CLOSE_ALL_S = 30.0
"""Longest wait for every server to end when the manager closes."""


class ServerState(str, enum.Enum):
    IDLE = "not started"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ServerInfo:
    """What is known about one server now (a snapshot)."""

    name: str
    config: McpServerConfig | None
    """``None`` when its settings are invalid (see ``error``)."""
    state: ServerState
    error: LLMError | None = None
    """Why it failed."""
    tools: tuple[RemoteTool, ...] = ()
    log_path: Path | None = None

    def to_dict(self, names: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:
        """JSON form (``spezichat mcp list --json``): exact text, no header values."""
        config = self.config
        return {
            "name": self.name,
            "state": self.state.value,
            "transport": config.transport if config else None,
            "target": config.target if config else None,
            "approve": config.approve if config else None,
            "enabled": config.enabled if config else None,
            "error": self.error.to_dict() if self.error else None,
            "log": str(self.log_path) if self.log_path else None,
            "tools": [
                {
                    "name": (names or {}).get((self.name, tool.name)),
                    "server_tool": tool.name,
                    "description": tool.description,
                    "input_schema": tool.input_schema,
                }
                for tool in self.tools
            ],
        }


@dataclass
class _Entry:
    info: ServerInfo
    connection: Connection | None = None
    started: concurrent.futures.Future[None] | None = None
    listeners_told: set[int] = field(default_factory=set)


class _Host:
    """A daemon thread running an event loop for the connections."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="spezichat-mcp", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        if not thread.is_alive():
            loop.close()


def default_log_dir() -> Path:
    """``mcp`` in spezichat's log directory (``$XDG_STATE_HOME/spezichat/log`` on Linux)."""
    from platformdirs import user_log_dir

    return Path(user_log_dir("spezichat", appauthor=False)) / "mcp"


class McpManager:
    """The configured MCP servers: their state, their tools, calls, restarts and closing."""

    def __init__(
        self,
        servers: Sequence[McpServerConfig],
        problems: dict[str, McpConfigError] | None = None,
        *,
        log_dir: Path | None = None,
    ) -> None:
        self.log_dir = log_dir or default_log_dir()
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        for config in servers:
            state = ServerState.IDLE if config.enabled else ServerState.DISABLED
            info = ServerInfo(config.name, config, state, log_path=self._log_path(config.name))
            self._entries[config.name] = _Entry(info)
        for name, error in (problems or {}).items():
            self._entries[name] = _Entry(ServerInfo(name, None, ServerState.FAILED, error))
        self._host = _Host()
        self._listeners: list[tuple[asyncio.AbstractEventLoop | None, Callable[[], None]]] = []
        self._closed = False

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"mcp-{sanitize(name)}.log"

    # What is there ---------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def servers(self) -> list[ServerInfo]:
        with self._lock:
            return [entry.info for entry in self._entries.values()]

    def server(self, name: str) -> ServerInfo | None:
        with self._lock:
            entry = self._entries.get(name)
            return entry.info if entry else None

    @property
    def starting(self) -> bool:
        return any(info.state is ServerState.STARTING for info in self.servers())

    def tools(self, reserved: Iterable[str] = ()) -> tuple[McpTool, ...]:
        """The tools of the ready servers, named so that none clashes with ``reserved``
        (the Python functions' names) or with another server's."""
        with self._lock:
            ready = [
                info
                for info in (entry.info for entry in self._entries.values())
                if info.state is ServerState.READY and info.config is not None
            ]
        remote = [tool for info in ready for tool in info.tools]
        names = assign_names(remote, reserved)
        policy = {info.name: info.config.approve for info in ready if info.config is not None}
        return tuple(
            McpTool(tool, name, self.call, approve=policy[tool.server])
            for tool, name in zip(remote, names, strict=True)
        )

    def tool_names(self, reserved: Iterable[str] = ()) -> dict[tuple[str, str], str]:
        """``(server, server's tool name) -> model-facing name`` for the ready servers."""
        return {(t.server, t.remote.name): t.name for t in self.tools(reserved)}

    # Listeners ---------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every change of state, on the caller's event loop
        (when added from one; else on the MCP thread). Returns what removes it."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        item = (loop, callback)
        with self._lock:
            self._listeners.append(item)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(item)

        return remove

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, callback in listeners:
            if loop is None:
                callback()
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(callback)

    def _set(self, name: str, **changes: Any) -> None:
        with self._lock:
            entry = self._entries[name]
            entry.info = replace(entry.info, **changes)
        self._changed()

    # Starting ----------------------------------------------------------------------------
    def start(self, names: Iterable[str] | None = None) -> None:
        """Start servers in the background: all enabled ones that are not started yet, or
        the ones named (even disabled ones). Returns at once."""
        if self._closed:
            return
        wanted = list(self._entries) if names is None else list(names)
        with self._lock:
            chosen = []
            for name in wanted:
                entry = self._entries.get(name)
                if entry is None or entry.info.config is None:
                    continue
                state = entry.info.state
                named = names is not None and state is ServerState.DISABLED
                if state is ServerState.IDLE or named:
                    entry.info = replace(entry.info, state=ServerState.STARTING, error=None)
                    chosen.append(name)
            for name in chosen:
                self._entries[name].started = self._host.submit(self._start(name))
        if chosen:
            self._changed()

    async def _start(self, name: str) -> None:
        """On the MCP thread: open the connection and record the outcome."""
        from backends.mcp.connection import Connection
        from backends.secrets import private_directory

        with contextlib.suppress(OSError):  # then the log cannot be opened: a start error
            private_directory(self.log_dir)
        _route_sdk_logging(self.log_dir)
        entry = self._entries[name]
        config = entry.info.config
        assert config is not None
        try:
            connection = Connection(config.expanded(), self._log_path(name))
        except LLMError as error:
            self._set(name, state=ServerState.FAILED, error=error)
            return
        try:
            tools = await connection.open()
        except LLMError as error:
            self._set(name, state=ServerState.FAILED, error=error)
            return
        except Exception as exc:  # not foreseen: still only this server fails
            log.exception("MCP server %s failed to start", name)
            failure = McpError(reason=f"{type(exc).__name__}: {exc}")
            self._set(name, state=ServerState.FAILED, error=failure)
            return
        with self._lock:
            current = self._entries[name]
            abandoned = self._closed or current.info.state is not ServerState.STARTING
            if not abandoned:
                current.connection = connection
        if abandoned:  # disabled or closed meanwhile
            await connection.close()
            return
        self._set(name, state=ServerState.READY, tools=tuple(tools))

    async def wait(self, names: Iterable[str] | None = None) -> None:
        """Wait (on any event loop) until the servers that are starting are ready or
        failed. Each start is bounded by its server's ``timeout``; cancelling the wait
        does not cancel the starts."""
        wanted = set(self._entries if names is None else names)
        with self._lock:
            futures = [
                entry.started
                for name, entry in self._entries.items()
                if name in wanted and entry.started is not None and not entry.started.done()
            ]
        for future in futures:
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wrap_future(future))

    def wait_blocking(self, timeout: float | None = None) -> None:
        """:meth:`wait` for code without an event loop."""
        with self._lock:
            futures = [e.started for e in self._entries.values() if e.started is not None]
        concurrent.futures.wait(futures, timeout=timeout)

    # Calls -------------------------------------------------------------------------------
    async def call(
        self, server: str, tool: str, arguments: dict[str, Any], label: str = ""
    ) -> ToolResult:
        """Call ``tool`` on ``server`` from any event loop; never raises (errors are
        results). Cancelling this cancels the call on the server."""
        with self._lock:
            entry = self._entries.get(server)
            connection = entry.connection if entry else None
        if connection is None:
            return ToolResult.error(
                f"The MCP server '{server}' is not running (it was stopped, disabled or failed)."
            )
        call = self._call(server, connection, tool, arguments, label or tool)
        future = self._host.submit(call)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _call(
        self,
        server: str,
        connection: Connection,
        tool: str,
        arguments: dict[str, Any],
        label: str,
    ) -> ToolResult:
        try:
            return await connection.call(tool, arguments, label)
        except McpCrashError as error:
            with self._lock:
                entry = self._entries[server]
                current = entry.connection is connection  # else: restarted meanwhile
                if current:
                    entry.connection = None
            if current:
                self._set(server, state=ServerState.FAILED, error=error, tools=())
            await connection.close()
            return ToolResult.error(f"{error.description} {error.reason}")

    # Restart, disable, close ---------------------------------------------------------------
    def restart(self, name: str) -> None:
        """Stop ``name`` if it runs and start it again (also a disabled or failed one)."""
        self._stop(name, ServerState.IDLE)
        self.start([name])

    def disable(self, name: str) -> None:
        """Stop ``name`` and offer none of its tools until it is restarted (this run only)."""
        self._stop(name, ServerState.DISABLED)

    def _stop(self, name: str, state: ServerState) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.info.config is None:
                return
            connection, entry.connection = entry.connection, None
            entry.info = replace(entry.info, state=state, tools=(), error=None)
        if connection is not None:
            self._host.submit(connection.close())
        self._changed()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        if not self._host.running:
            self._closed = True
            return
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """End every server that was started and the MCP thread (blocks, bounded)."""
        with self._lock:
            self._closed = True
            connections = [e.connection for e in self._entries.values() if e.connection]
            starting = [e.started for e in self._entries.values() if e.started is not None]
            for entry in self._entries.values():
                entry.connection = None
        if not self._host.running:
            return
        for future in starting:
            future.cancel()  # a start that is cancelled stops what it started

        async def close_all() -> None:
            # A start that is still running closes its own connection when it ends.
            await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

        with contextlib.suppress(Exception):
            self._host.submit(close_all()).result(CLOSE_ALL_S)
        concurrent.futures.wait(starting, timeout=CLOSE_ALL_S)
        self._host.stop()


_routed = False


def _route_sdk_logging(log_dir: Path) -> None:
    """Send the SDK's own log records to ``mcp-client.log``: without a handler, Python
    prints warnings to stderr, which is the app's screen."""
    global _routed
    if _routed:
        return
    _routed = True
    try:
        handler: logging.Handler = logging.FileHandler(log_dir / "mcp-client.log", delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("mcp", "httpx2", "httpcore2"):
        logging.getLogger(name).addHandler(handler)


def python_tool_names(tools: Iterable[Tool]) -> list[str]:
    return [tool.name for tool in tools if not isinstance(tool, McpTool)]


__all__ = ["McpManager", "ServerInfo", "ServerState", "default_log_dir", "python_tool_names"]
