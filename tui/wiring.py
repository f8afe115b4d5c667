"""Builds platforms and schemas from settings and command-line options.

The entry points (the app and ``spezichat ask``) call these; backends are imported
lazily, only the one in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.errors import ConfigurationError
from backends.functions import Tool
from backends.session import Platform, Schema
from tui.settings import Settings, config_dir

if TYPE_CHECKING:
    from backends.fog.config import FogConfig
    from backends.mcp.manager import McpManager

BACKENDS: dict[str, str] = {
    "mock": "A scripted mock model for demos and tests (no network).",
    "openai": "OpenAI's API (or any compatible server at OPENAI_BASE_URL); needs an API key.",
    "local": "A GGUF model on this machine through llama.cpp (no network once downloaded).",
    "fog": "An OpenAI-compatible server on your network, found over mDNS (TLS with its CA).",
}


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
    chat_format: str = ""
    """On-device chat format for this chat; empty uses ``[local] chat_format``."""
    extra: dict[str, Any] = field(default_factory=dict)


def unknown_backend(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unknown backend '{name}'.",
        reason=f"spezichat knows these backends: {', '.join(BACKENDS)}.",
        suggestion="Pass one of them with --backend, or run `spezichat --onboarding`.",
    )


def make_platform(
    backend: str, settings: Settings, *, overrides: Mapping[str, Any] | None = None
) -> Platform[Any]:
    """Create the platform for ``backend`` configured from ``settings``.

    ``overrides`` are command-line values that beat both the environment and the
    settings (for fog: ``ca_cert``, ``token_command``, ``insecure``, ``interfaces``).
    """
    if backend == "mock":
        from backends.mock import MockPlatform

        return MockPlatform()
    if backend == "openai":
        from backends.openai import OpenAIPlatform

        return OpenAIPlatform(
            base_url=settings.openai.base_url or None,
            timeout=settings.openai.timeout,
            idle_timeout=settings.openai.idle_timeout,
            max_concurrent_streams=settings.openai.max_concurrent_streams,
        )
    if backend == "local":
        from backends.local.models import ModelStore
        from backends.local.platform import LocalPlatform

        return LocalPlatform(store=ModelStore(settings.local.models_dir or None))
    if backend == "fog":
        from backends.fog.platform import FogPlatform

        return FogPlatform(fog_config(settings, overrides))
    raise unknown_backend(backend)


FOG_TOKEN_FILE = "fog_token"
"""File in the config directory holding a bearer token typed during onboarding (0600)."""


def fog_config(settings: Settings, overrides: Mapping[str, Any] | None = None) -> FogConfig:
    """The fog configuration: command line, then environment, then settings.

    CA file: ``--ca-cert``, ``SPEZICHAT_FOG_CA_CERT``, ``[fog] ca_cert``. Token:
    ``--token-command``, ``SPEZICHAT_FOG_TOKEN``, ``[fog] token_command``, the stored
    token file. ``--insecure`` allows plain-HTTP nodes like ``[fog] allow_http`` (without
    the token); ``--allow-http-node`` entries add to ``[fog] allow_http_nodes`` (the
    plain-HTTP nodes on other hosts that may get the token).
    """
    import os
    from pathlib import Path

    from backends.fog.auth import TOKEN_ENV, CommandToken, EnvToken, FileToken, TokenProvider
    from backends.fog.config import FogConfig

    fog = settings.fog
    cli = dict(overrides or {})
    ca = cli.get("ca_cert") or os.environ.get("SPEZICHAT_FOG_CA_CERT", "").strip() or fog.ca_cert
    token: TokenProvider | None = None
    token_file = config_dir() / FOG_TOKEN_FILE
    token_timeout = fog.token_timeout
    if isinstance(token_timeout, bool) or not isinstance(token_timeout, (int, float)):
        token_timeout = -1.0
    if not token_timeout > 0:
        raise ConfigurationError(
            "The token command's time limit is invalid.",
            reason=f"[fog] token_timeout must be a number of seconds above 0, "
            f"got {fog.token_timeout!r}.",
            suggestion="Fix token_timeout in config.toml (for example 10), or remove it.",
        )
    if cli.get("token_command"):
        token = CommandToken(str(cli["token_command"]), timeout=token_timeout)
    elif os.environ.get(TOKEN_ENV, "").strip():
        token = EnvToken()
    elif fog.token_command:
        token = CommandToken(fog.token_command, timeout=token_timeout)
    elif token_file.is_file():
        token = FileToken(token_file)
    try:
        return FogConfig(
            ca_cert=Path(ca).expanduser() if ca else None,
            expected_host=fog.expected_host.strip().rstrip("."),
            token=token,
            allow_http=bool(cli.get("insecure")) or fog.allow_http,
            allow_http_nodes=_allow_list(fog.allow_http_nodes, cli.get("allow_http_nodes")),
            discovery_timeout=float(cli.get("discovery_timeout") or fog.discovery_timeout),
            manual_nodes=tuple(fog.manual_nodes),
            service_names=tuple(fog.service_names),
            interfaces=tuple(cli.get("interfaces") or fog.interfaces),
            request_timeout=fog.timeout,
            idle_timeout=fog.idle_timeout,
            max_streams_per_node=fog.max_streams_per_node,
            strategy=fog.strategy,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            "The [fog] settings are invalid.",
            reason=str(exc),
            suggestion="Fix the [fog] section of config.toml (see README, Fog nodes).",
        ) from exc


def _allow_list(configured: Any, given: Any) -> tuple[str, ...]:
    """``[fog] allow_http_nodes`` and the ``--allow-http-node`` entries, in that order."""
    if isinstance(configured, str) or not isinstance(configured, (list, tuple)):
        raise ValueError("allow_http_nodes must be a list of strings such as ['10.0.0.5:8080']")
    entries = [*configured, *(given or ())]
    if not all(isinstance(entry, str) for entry in entries):
        raise ValueError("allow_http_nodes must be a list of strings such as ['10.0.0.5:8080']")
    return tuple(dict.fromkeys(entry.strip() for entry in entries))


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
    if options.backend == "mock":
        from backends.mock import MockSchema

        return MockSchema(
            model=options.model or "mock",
            system_prompts=options.system_prompts,
            functions=options.tools,
            tool_timeout=timeout,
            **options.extra,
        )
    if options.backend == "openai":
        from backends.openai import OpenAISchema

        if not options.model:
            raise ConfigurationError(
                "No OpenAI model is chosen.",
                reason="Neither --model nor the settings name a model for the openai backend.",
                suggestion="Pass --model (for example gpt-4o-mini); "
                "`spezichat models --backend openai` lists the models your key can use.",
            )
        return OpenAISchema(
            model=options.model,
            system_prompts=options.system_prompts,
            functions=options.tools,
            tool_timeout=timeout,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=options.max_tokens,
            test_model_access=settings.openai.test_model_access,
            **options.extra,
        )
    if options.backend == "local":
        from backends.local.catalog import starter_entry
        from backends.local.platform import LocalSchema

        local = settings.local
        return LocalSchema(
            # No model chosen: the offline starter that ships with spezichat.
            model=options.model or starter_entry().id,
            system_prompts=options.system_prompts,
            functions=options.tools,
            tool_timeout=timeout,
            chat_format=options.chat_format or local.chat_format,
            n_gpu_layers=local.n_gpu_layers,
            n_ctx=local.n_ctx,
            n_batch=local.n_batch,
            n_threads=local.n_threads,
            seed=local.seed,
            flash_attn=local.flash_attn,
            temperature=options.temperature,
            top_p=options.top_p,
            top_k=local.top_k,
            min_p=local.min_p,
            repeat_penalty=local.repeat_penalty,
            repeat_last_n=local.repeat_last_n,
            chat_template=local.chat_template,
            max_tokens=options.max_tokens,
            stop=tuple(local.stop),
            cpu_extra_buffers=local.cpu_extra_buffers,
            **options.extra,
        )
    if options.backend == "fog":
        from backends.fog.platform import FogSchema

        # No model: the first one the chosen node lists.
        return FogSchema(
            model=options.model,
            system_prompts=options.system_prompts,
            functions=options.tools,
            tool_timeout=timeout,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=options.max_tokens,
            **options.extra,
        )
    raise unknown_backend(options.backend)
