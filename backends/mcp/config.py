"""MCP server settings: ``[mcp.servers.NAME]`` tables and the common ``mcpServers`` JSON.

A server is either a command spezichat starts and talks to over stdin/stdout
(``command``, ``args``, ``env``) or a streamable-HTTP endpoint (``url``, ``headers``)::

    [mcp.servers.files]
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"]

    [mcp.servers.search]
    url = "https://search.example.com/mcp"
    headers = { Authorization = "Bearer ${SEARCH_TOKEN}" }
    approve = "always"

``${VAR}`` in ``args``, ``env``, ``url`` and ``headers`` values is replaced by the
environment variable ``VAR`` when the server starts (a missing one is an error that names
the variable, never a value). Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from backends.mcp.errors import McpConfigError

Approve = Literal["ask", "always"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a server may take to start, complete the handshake and list its tools."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEYS = {"command", "args", "env", "cwd", "url", "headers", "enabled", "timeout", "approve"}


@dataclass(frozen=True)
class McpServerConfig:
    """One ``[mcp.servers.NAME]`` table, checked (``${VAR}`` not yet expanded)."""

    name: str
    """The table's name; it prefixes the server's tools (``NAME__tool``)."""
    command: str = ""
    """Program to start for a stdio server (looked up on PATH), e.g. "npx" or "uvx"."""
    args: tuple[str, ...] = ()
    """Arguments of the command."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables for the command, on top of HOME, PATH, USER, SHELL, TERM and
    LOGNAME (nothing else of spezichat's environment is passed on)."""
    cwd: str = ""
    """Working directory of the command; empty: spezichat's own."""
    url: str = ""
    """Endpoint of a streamable-HTTP server (http:// or https://), instead of a command."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """HTTP headers sent with every request to ``url``, e.g. an Authorization header."""
    enabled: bool = True
    """Whether the server is started and its tools offered; false keeps the entry."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds the server may take to start and list its tools. Tool calls are limited by
    [general] tool_timeout, like Python functions."""
    approve: Approve = "ask"
    """"ask": each call of the server's tools waits for your yes; "always": they run
    without asking (only for servers you trust with every call)."""

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "http" if self.url else "stdio"

    @property
    def target(self) -> str:
        """What the server is, for people: the command line or the URL (no header values)."""
        if self.url:
            return self.url
        return " ".join([self.command, *self.args])

    def expanded(self, environ: Mapping[str, str] | None = None) -> McpServerConfig:
        """This configuration with ``${VAR}`` replaced from ``environ`` (default: os.environ)."""
        env = os.environ if environ is None else environ

        def expand(text: str, where: str) -> str:
            def value(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in env:
                    raise McpConfigError(
                        f"The MCP server '{self.name}' needs an environment variable "
                        "that is not set.",
                        reason=f"[mcp.servers.{self.name}] {where} refers to ${{{name}}}, "
                        f"and {name} is not set in spezichat's environment.",
                        suggestion=f"Set {name} in the environment, or write the value into "
                        "the server's configuration instead.",
                    )
                return env[name]

            return _VARIABLE.sub(value, text)

        headers = {key: expand(value, f"headers.{key}") for key, value in self.headers.items()}
        for key, value in headers.items():
            _check_header(self.name, key, value)
        return McpServerConfig(
            name=self.name,
            command=self.command,
            args=tuple(expand(arg, "args") for arg in self.args),
            env={key: expand(value, f"env.{key}") for key, value in self.env.items()},
            cwd=os.path.expanduser(self.cwd) if self.cwd else "",
            url=expand(self.url, "url"),
            headers=headers,
            enabled=self.enabled,
            timeout=self.timeout,
            approve=self.approve,
        )


def _check_header(server: str, key: str, value: str) -> None:
    """A header value must fit into an HTTP header; the message never shows the value."""
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
        raise McpConfigError(
            f"The MCP server '{server}' has an invalid header name.",
            reason=f"[mcp.servers.{server}] headers has the name {json.dumps(key)}, which "
            "HTTP does not allow (letters, digits and -_. only).",
        )
    if any(ord(char) < 0x20 or ord(char) == 0x7F or ord(char) > 0xFF for char in value):
        raise McpConfigError(
            f"The MCP server '{server}' has an invalid value for the header {key}.",
            reason="The value (not shown) contains a control character or a character "
            "outside Latin-1, which cannot be sent in an HTTP header; a value copied with "
            "its line break does that.",
            suggestion=f"Fix headers.{key} of the server's configuration "
            "(`McpServerConfig`), or the environment variable it names.",
        )


def _bad(name: str, key: str, wanted: str, value: Any) -> McpConfigError:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return McpConfigError(
        f"The settings of the MCP server '{name}' are invalid.",
        reason=f"[mcp.servers.{name}] {key} must be {wanted} (got {shown}).",
    )


def _strings(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _bad(name, key, "a list of strings", value)
    return tuple(value)


def _table(name: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(name, key, "a table of strings", value)
    return dict(value)


def parse_server(name: str, raw: Any) -> McpServerConfig:
    """Check one ``[mcp.servers.NAME]`` table; raises :class:`McpConfigError`."""
    if not isinstance(raw, Mapping):
        raise _bad(name, "", "a table", raw)
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise McpConfigError(
            f"The settings of the MCP server '{name}' are invalid.",
            reason=f"[mcp.servers.{name}] has keys spezichat does not know: "
            f"{', '.join(unknown)}; it knows {', '.join(sorted(_KEYS))}.",
        )
    for key in ("command", "url", "cwd"):
        if key in raw and not isinstance(raw[key], str):
            raise _bad(name, key, "a string", raw[key])
    command = str(raw.get("command", "")).strip()
    url = str(raw.get("url", "")).strip()
    if bool(command) == bool(url):
        raise McpConfigError(
            f"The settings of the MCP server '{name}' are invalid.",
            reason=f"[mcp.servers.{name}] needs either command (a server spezichat starts) "
            "or url (a streamable-HTTP server)"
            + (", not both." if command else "; it has neither."),
        )
    if url and not re.match(r"^https?://", url, re.IGNORECASE):
        raise _bad(name, "url", "an http:// or https:// address", url)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad(name, "enabled", "true or false", enabled)
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise _bad(name, "timeout", "a number of seconds above 0", timeout)
    approve = raw.get("approve", "ask")
    if approve not in ("ask", "always"):
        raise _bad(name, "approve", '"ask" or "always"', approve)
    return McpServerConfig(
        name=name,
        command=command,
        args=_strings(name, "args", raw.get("args", [])),
        env=_table(name, "env", raw.get("env", {})),
        cwd=str(raw.get("cwd", "")),
        url=url,
        headers=_table(name, "headers", raw.get("headers", {})),
        enabled=enabled,
        timeout=float(timeout),
        approve=approve,
    )


def parse_servers(
    raw: Mapping[str, Any],
) -> tuple[list[McpServerConfig], dict[str, McpConfigError]]:
    """Every server in ``[mcp.servers]``: the usable ones and, by name, why others are not."""
    servers: list[McpServerConfig] = []
    problems: dict[str, McpConfigError] = {}
    for name, table in raw.items():
        try:
            servers.append(parse_server(str(name), table))
        except McpConfigError as error:
            problems[str(name)] = error
    return servers, problems


def import_mcp_json(data: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``{"mcpServers": {...}}`` JSON other MCP clients use, as ``[mcp.servers]`` tables.

    Returns the tables by name and a note for each entry that was left out. Entries keep
    ``command``/``args``/``env`` or ``url``/``headers``; ``"disabled": true`` becomes
    ``enabled = false``. Legacy SSE servers (``"type": "sse"``) are left out: spezichat
    speaks stdio and streamable HTTP. Raises :class:`McpConfigError` for a file without
    an ``mcpServers`` object.
    """
    servers = data.get("mcpServers") if isinstance(data, Mapping) else None
    if servers is None and isinstance(data, Mapping):
        servers = data.get("servers")  # VS Code's mcp.json
    if not isinstance(servers, Mapping):
        raise McpConfigError(
            "The file holds no MCP servers.",
            reason='It is not a JSON object with an "mcpServers" object in it.',
            suggestion="Pass the JSON file of another MCP client, such as Claude Desktop's "
            'claude_desktop_config.json: {"mcpServers": {"name": {"command": ...}}}.',
        )
    tables: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for name, entry in servers.items():
        if not isinstance(entry, Mapping):
            skipped.append(f"{name}: not a JSON object")
            continue
        kind = str(entry.get("type") or entry.get("transport") or "").lower()
        if kind == "sse":
            skipped.append(f"{name}: an SSE server (spezichat speaks stdio and streamable HTTP)")
            continue
        table: dict[str, Any] = {}
        for key in ("command", "args", "env", "cwd", "url", "headers"):
            if key in entry:
                table[key] = entry[key]
        if entry.get("disabled") is True:
            table["enabled"] = False
        try:
            parse_server(str(name), table)
        except McpConfigError as error:
            skipped.append(f"{name}: {error.reason}")
            continue
        tables[str(name)] = table
    return tables, skipped


__all__ = [
    "DEFAULT_TIMEOUT",
    "Approve",
    "McpServerConfig",
    "import_mcp_json",
    "parse_server",
    "parse_servers",
]
