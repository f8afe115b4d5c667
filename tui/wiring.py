"""Builds platforms and schemas from settings and command-line options.

The entry points (the app and ``spezichat ask``) call these; each is a thin function over
the backend registry (:mod:`tui.backends`), which imports a backend only when it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.errors import ConfigurationError
from backends.functions import Tool
from backends.session import Platform, Schema
from tui.backends import REGISTRY, Backend
from tui.backends.fog import FOG_TOKEN_FILE, fog_config  # re-exported: their old home
from tui.settings import Settings

if TYPE_CHECKING:
    from backends.mcp.manager import McpManager


@dataclass(frozen=True)
class ChatOptions:
    """What a chat asks of its backend, gathered from settings and the command line."""

    backend: str
    model: str = ""
    system_prompts: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: tuple[Tool, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    """The backend's own command-line options, by ``dest`` (``ask --chat-format`` gives
    ``chat_format``): see :class:`tui.backends.AskOptions`."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments for the schema (tests script the mock model with them)."""


def unknown_backend(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unknown backend '{name}'.",
        reason=f"spezichat knows these backends: {', '.join(REGISTRY)}.",
        suggestion="Pass one of them with --backend, or run `spezichat --onboarding`.",
    )


def backend(name: str) -> Backend:
    """The registered backend called ``name``; :func:`unknown_backend` when there is none."""
    found = REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise unknown_backend(name)
    return found


def make_platform(
    backend_id: str, settings: Settings, *, overrides: Mapping[str, Any] | None = None
) -> Platform[Any]:
    """Create the platform for ``backend_id`` configured from ``settings``.

    ``overrides`` are the backend's command-line options, which beat both the
    environment and the settings (for fog: ``ca_cert``, ``token_command``, ``insecure``,
    ``interfaces``).
    """
    return backend(backend_id).platform(settings, overrides or {})


def mcp_manager(settings: Settings) -> McpManager | None:
    """The ``[mcp.servers]`` of the settings, none started yet; ``None`` without any.

    Cheap: neither the MCP SDK nor a server is loaded here (see backends.mcp.manager).
    """
    servers = settings.mcp.servers
    if not isinstance(servers, dict) or not servers:
        return None
    from backends.mcp.config import parse_servers
    from backends.mcp.manager import McpManager

    configs, problems = parse_servers(servers)
    return McpManager(configs, problems)


def offer_tools(tools: tuple[Tool, ...], mcp: McpManager | None) -> tuple[Tool, ...]:
    """The Python functions, then the tools of the ready MCP servers (named so that
    none clashes with a Python function's name or another server's tool)."""
    if mcp is None:
        return tools
    return tools + mcp.tools(reserved=[tool.name for tool in tools])


def tool_timeout(settings: Settings) -> float:
    """``[general] tool_timeout``, checked: a hand-edited config may hold anything."""
    value = settings.general.tool_timeout
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            "The function-call time limit is invalid.",
            reason=f"[general] tool_timeout must be a number of seconds above 0, got {value!r}.",
            suggestion="Fix tool_timeout in config.toml (for example 60), or remove it.",
        )
    return float(value)


def make_schema(options: ChatOptions, settings: Settings) -> Schema:
    """Create the schema that asks ``options.backend`` for a chat as described."""
    timeout = tool_timeout(settings)
    return backend(options.backend).schema(options, settings, timeout)


__all__ = [
    "FOG_TOKEN_FILE",
    "ChatOptions",
    "backend",
    "fog_config",
    "make_platform",
    "make_schema",
    "mcp_manager",
    "offer_tools",
    "tool_timeout",
    "unknown_backend",
]
