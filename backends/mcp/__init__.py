"""MCP tool servers (Model Context Protocol) for every backend, through the official SDK.

Servers come from ``[mcp.servers.NAME]`` in config.toml (:mod:`backends.mcp.config`).
An :class:`McpManager` starts them lazily on a thread of its own and offers their tools as
:class:`backends.functions.Tool` objects (:class:`McpTool`), so they are approved,
validated, limited and reported exactly like Python functions on OpenAI, fog nodes and
on-device models alike. Importing this package loads neither the SDK nor anything that
does I/O; the SDK is imported when the first server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

_EXPORTS = {
    "McpServerConfig": "config",
    "import_mcp_json": "config",
    "parse_server": "config",
    "parse_servers": "config",
    "McpConfigError": "errors",
    "McpCrashError": "errors",
    "McpError": "errors",
    "McpStartError": "errors",
    "McpTimeoutError": "errors",
    "McpManager": "manager",
    "ServerInfo": "manager",
    "ServerState": "manager",
    "McpTool": "tools",
    "approver_with_policy": "tools",
}

__all__ = [
    "McpConfigError",
    "McpCrashError",
    "McpError",
    "McpManager",
    "McpServerConfig",
    "McpStartError",
    "McpTimeoutError",
    "McpTool",
    "ServerInfo",
    "ServerState",
    "approver_with_policy",
    "import_mcp_json",
    "parse_server",
    "parse_servers",
]

if TYPE_CHECKING:
    from backends.mcp.config import (
        McpServerConfig,
        import_mcp_json,
        parse_server,
        parse_servers,
    )
    from backends.mcp.errors import (
        McpConfigError,
        McpCrashError,
        McpError,
        McpStartError,
        McpTimeoutError,
    )
    from backends.mcp.manager import McpManager, ServerInfo, ServerState
    from backends.mcp.tools import McpTool, approver_with_policy

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
