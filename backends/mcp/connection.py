"""One live connection to one MCP server, through the official ``mcp`` SDK.

Imported only on the MCP thread (see :mod:`backends.mcp.manager`) when the first server
starts: the SDK takes most of a second to import. The SDK's context managers must be
entered and left by one task, so each connection has an owner task that opens the
transport and the client session, reports the tool list, then waits until it is told to
close; calls are made from other tasks through the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import httpx2
import mcp_types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from backends import __version__
from backends.errors import LLMError, sentence
from backends.functions import ToolResult
from backends.mcp.config import McpServerConfig
from backends.mcp.errors import McpCrashError, McpStartError, McpTimeoutError
from backends.mcp.tools import RemoteTool, render_result
from backends.untrusted import one_line

CLOSE_WAIT_S = 10.0
"""Longest wait for a server to end when it is closed (the SDK escalates to SIGKILL)."""

MAX_TOOL_PAGES = 50


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups from anyio task groups."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


def _text(exc: BaseException) -> str:
    if isinstance(exc, MCPError):
        return one_line(exc.message)[:300]
    if isinstance(exc, OSError) and exc.strerror:
        return one_line(f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else ""))
    message = one_line(str(exc))[:300]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class Connection:
    """A started server: its tools, calls to them, and closing it."""

    def __init__(self, config: McpServerConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.tools: list[RemoteTool] = []
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._log: IO[str] | None = None
        self._log_start = 0
        self._validators: dict[str, Any] = {}

    # Starting ------------------------------------------------------------------------
    async def open(self) -> list[RemoteTool]:
        """Start the server, complete the handshake and list its tools.

        Raises :class:`McpStartError` (or :class:`McpTimeoutError` after ``timeout``);
        whatever was started is stopped again first.
        """
        ready: asyncio.Future[list[RemoteTool]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name=f"mcp-{self.config.name}")
        try:
            done, _ = await asyncio.wait((ready,), timeout=self.config.timeout)
        except asyncio.CancelledError:
            await self.close()
            raise
        if not done:
            ready.cancel()
            await self.close()
            raise McpTimeoutError(
                reason=f"The MCP server '{self.config.name}' did not finish starting (handshake "
                f"and tool list) within {self.config.timeout:g} seconds.{self._last_words()}",
                suggestion=f"Check that `{one_line(self.config.target)[:200]}` is an MCP "
                "server and works, or give it longer (`McpServerConfig.timeout`). "
                f"Its log: {self.log_path}",
            )
        try:
            self.tools = ready.result()
        except BaseException as exc:
            await self.close()
            raise self._start_error(_leaf(exc)) from None
        return self.tools

    def _start_error(self, exc: BaseException) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        name, target = self.config.name, one_line(self.config.target)[:200]
        if isinstance(exc, FileNotFoundError):
            return McpStartError(
                reason=f"The command of the MCP server '{name}' was not found: "
                f"{one_line(self.config.command)[:200]}.",
                suggestion="Install the program, or give its full path "
                "(`McpServerConfig.command`; PATH is passed on to it).",
            )
        if isinstance(exc, OSError) and self.config.transport == "stdio":
            return McpStartError(
                reason=sentence(
                    f"The command of the MCP server '{name}' could not be run: {_text(exc)}"
                ),
                suggestion="Check the command and its folder "
                "(`McpServerConfig.command`, `McpServerConfig.cwd`).",
            )
        if self.config.transport == "http":
            return McpStartError(
                reason=sentence(
                    f"The MCP server '{name}' at {target} could not be reached or did "
                    f"not answer as an MCP server: {_text(exc)}"
                ),
                suggestion="Check that the server runs and that its address and headers "
                "(`McpServerConfig.url`, `McpServerConfig.headers`) are right.",
            )
        return McpStartError(
            reason=f"The MCP server '{name}' ended or failed before it was ready "
            f"({_text(exc)}).{self._last_words()}",
            suggestion=f"Run `{target}` in a terminal to see what it needs. Its log: "
            f"{self.log_path}",
        )

    def _last_words(self) -> str:
        """The last lines the server wrote to stderr since it started, neutralised."""
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.flush()
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                data = log.read()[-4000:]
        except OSError:
            return ""
        lines = [one_line(line) for line in data.decode("utf-8", "replace").splitlines()]
        lines = [line.strip() for line in lines if line.strip()][-3:]
        if not lines:
            return ""
        words = " / ".join(lines)
        return f" Its last words on stderr: {words[-400:]}"

    def _transport(self, stack: AsyncExitStack) -> Any:
        config = self.config
        if config.transport == "http":
            http = httpx2.AsyncClient(
                headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=300.0)
            )
            return http, streamable_http_client(config.url, http_client=http)
        # The server's stderr may hold what it was given (tokens): the user's alone.
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._log = open(descriptor, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"--- {stamp} spezichat starts: {one_line(config.target)}\n")
        self._log.flush()
        self._log_start = self._log.tell()
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=dict(config.env) or None,
            cwd=config.cwd or None,
            encoding_error_handler="replace",
        )
        return None, stdio_client(params, errlog=self._log)

    async def _own(self, ready: asyncio.Future[list[RemoteTool]]) -> None:
        try:
            async with AsyncExitStack() as stack:
                http, transport = self._transport(stack)
                if http is not None:
                    await stack.enter_async_context(http)
                client = Client(
                    transport,
                    client_info=mcp_types.Implementation(name="spezichat", version=__version__),
                )
                await stack.enter_async_context(client)
                tools = await self._list_tools(client)
                self._client = client
                if not ready.done():
                    ready.set_result(tools)
                await self._stop.wait()
        except BaseException as exc:
            if not isinstance(exc, Exception):
                ready.cancel()  # cancelled (closed while starting): nobody waits
                raise
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._client = None
            if self._log is not None:
                with contextlib.suppress(OSError):
                    self._log.close()
                self._log = None

    async def _list_tools(self, client: Client) -> list[RemoteTool]:
        tools: list[RemoteTool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
                tools.append(
                    RemoteTool(self.config.name, tool.name, tool.description or "", dict(schema))
                )
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    # Calls ---------------------------------------------------------------------------
    def _invalid(self, tool: RemoteTool, arguments: dict[str, Any]) -> str | None:
        """Why ``arguments`` do not fit the tool's input schema, or ``None``."""
        import jsonschema

        validator: Any = self._validators.get(tool.name)
        if validator is None:
            try:
                cls = jsonschema.validators.validator_for(tool.input_schema)
                cls.check_schema(tool.input_schema)
                validator = cls(tool.input_schema)
            except jsonschema.SchemaError:
                validator = False  # the server's schema is broken: let the server judge
            self._validators[tool.name] = validator
        if validator is False:
            return None
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        return (f"'{where}': " if where else "") + one_line(error.message)[:300]

    async def call(self, tool_name: str, arguments: dict[str, Any], label: str) -> ToolResult:
        """Call a tool (``label``: its name for the model). A crash raises
        :class:`McpCrashError`; everything the server answers (errors included) is a
        result."""
        client = self._client
        tool = next((t for t in self.tools if t.name == tool_name), None)
        if client is None or tool is None:
            raise McpCrashError(reason=f"The MCP server '{self.config.name}' is not running.")
        problem = self._invalid(tool, arguments)
        if problem is not None:
            return ToolResult.error(f"Invalid arguments for function '{label}': {problem}.")
        try:
            result = await client.call_tool(tool_name, arguments)
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                raise McpCrashError(
                    reason=f"The MCP server '{self.config.name}' closed the connection during "
                    f"a call of '{tool_name}'.{self._last_words()}",
                    suggestion=f"Restart it (`McpManager.restart`). Its log: {self.log_path}",
                ) from None
            return ToolResult.error(f"The server answered with an error: {_text(exc)}")
        except (OSError, httpx2.HTTPError) as exc:
            raise McpCrashError(
                reason=sentence(
                    f"The connection to the MCP server '{self.config.name}' failed during "
                    f"a call of '{tool_name}': {_text(exc)}"
                ),
                suggestion="Check that the server still runs, then restart it "
                "(`McpManager.restart`).",
            ) from None
        except Exception as exc:  # a malformed answer (validation) and the like
            return ToolResult.error(f"The server's answer could not be used: {_text(exc)}")
        return render_result(result)

    # Closing -------------------------------------------------------------------------
    async def close(self) -> None:
        """End the session and the server (the SDK closes stdin, then signals, then kills)."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        if self._client is None:
            task.cancel()  # still starting: nothing waits on the stop event yet
        done, _ = await asyncio.wait((task,), timeout=CLOSE_WAIT_S)
        if not done:
            task.cancel()
            await asyncio.wait((task,), timeout=CLOSE_WAIT_S)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failed session is no news here


__all__ = ["Connection"]
