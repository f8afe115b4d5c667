"""The fog backend: OpenAI-compatible servers on the local network, found over mDNS.

Also :func:`fog_config`, the fog configuration from the command line, the environment and
the settings (``spezichat discover`` and the onboarding use it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tui.backends import AskOptions, Backend
from tui.backends.openai import API_MODULES

if TYPE_CHECKING:
    import argparse

    from backends.fog.config import FogConfig
    from backends.fog.platform import FogPlatform, FogSchema
    from tui.onboarding.flow import StepFactory
    from tui.settings import Settings
    from tui.wiring import ChatOptions

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

    from backends.errors import ConfigurationError
    from backends.fog.auth import TOKEN_ENV, CommandToken, EnvToken, FileToken, TokenProvider
    from backends.fog.config import FogConfig
    from tui.settings import config_dir

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


def platform(settings: Settings, overrides: Mapping[str, Any]) -> FogPlatform:
    """``overrides``: ``ca_cert``, ``token_command``, ``insecure``, ``interfaces`` and
    ``allow_http_nodes`` from the command line; they beat the environment and settings."""
    from backends.fog.platform import FogPlatform

    return FogPlatform(fog_config(settings, overrides))


def schema(options: ChatOptions, settings: Settings, tool_timeout: float) -> FogSchema:
    from backends.fog.platform import FogSchema

    # No model: the first one the chosen node lists.
    return FogSchema(
        model=options.model,
        system_prompts=options.system_prompts,
        functions=options.tools,
        tool_timeout=tool_timeout,
        temperature=options.temperature,
        top_p=options.top_p,
        max_tokens=options.max_tokens,
        **options.extra,
    )


async def list_models(settings: Settings) -> list[tuple[str, str]]:
    from tui.commands.discover import list_fog

    return await list_fog(settings)


def onboarding() -> tuple[StepFactory, ...]:
    from tui.onboarding.fog import FogAccessStep, FogModelStep, FogNodesStep

    return (FogAccessStep, FogNodesStep, FogModelStep)


def _add_options(parser: argparse.ArgumentParser) -> None:
    from tui.commands.discover import add_client_options

    add_client_options(parser)


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    from tui.commands.discover import client_overrides

    return client_overrides(args)


BACKEND = Backend(
    id="fog",
    label="Fog node on this network",
    summary="A server on your local network, found automatically; data stays on your LAN.",
    platform=platform,
    schema=schema,
    requires=("zeroconf",),
    section="fog",
    onboarding=onboarding,
    warm_up=API_MODULES,
    list_models=list_models,
    # Shared with `spezichat discover`; with another backend they are ignored.
    ask_options=AskOptions(add=_add_options, read=_read_options),
)
