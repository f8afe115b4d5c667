"""Typed errors of the MCP client layer (each with description, reason and suggestion).

Reasons quote servers' words (their stderr, their error messages) only through
:func:`backends.untrusted.one_line`, shortened: a server is external, untrusted text.
"""

from __future__ import annotations

from backends.errors import ConfigurationError, LLMError


class McpError(LLMError):
    """Something went wrong with an MCP tool server."""

    description = "An MCP tool server failed."
    reason = "The server did not behave as the Model Context Protocol expects."
    suggestion = (
        "Check the server's log and its configuration, then restart it (`McpManager.restart`)."
    )


class McpConfigError(McpError, ConfigurationError):
    """An ``[mcp.servers.NAME]`` entry (or an imported mcpServers file) cannot be used."""

    description = "An MCP server's settings are invalid."
    suggestion = "Fix the server's configuration (`McpServerConfig`)."


class McpStartError(McpError):
    """A server could not be started or did not complete the MCP handshake."""

    description = "An MCP server could not be started."


class McpTimeoutError(McpStartError):
    """A server did not finish starting (handshake and tool list) within its time limit."""

    description = "An MCP server took too long to start."


class McpCrashError(McpError):
    """A server that was running stopped (its process ended or its connection closed)."""

    description = "An MCP server stopped unexpectedly."


__all__ = ["McpConfigError", "McpCrashError", "McpError", "McpStartError", "McpTimeoutError"]
