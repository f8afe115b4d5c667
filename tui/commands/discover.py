"""``spezichat discover``: list the fog nodes on the local network.

Also home of the fog client options shared with ``spezichat ask`` (``--ca-cert``,
``--token-command``, ``--insecure``, ``--interface``) and of the fog lister of
``spezichat models``.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to reach fog nodes (used by ``ask`` and ``discover``)."""
    group = parser.add_argument_group("fog nodes (--backend fog)")
    group.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="root CA certificate of the fog node (ca.crt from `spezichat fog init`); "
        "default: SPEZICHAT_FOG_CA_CERT, else [fog] ca_cert",
    )
    group.add_argument(
        "--token-command",
        metavar="CMD",
        help="command that prints the bearer token (run again after a 401); default: "
        "SPEZICHAT_FOG_TOKEN, else [fog] token_command, else the stored token",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="use plain-HTTP fog nodes on the network, without sending them the token "
        "(development; certificates are still verified for HTTPS nodes)",
    )
    group.add_argument(
        "--allow-http-node",
        action="append",
        type=_allow_entry,
        metavar="HOST[:PORT]",
        help="send the token to this plain-HTTP node on another host (repeatable; "
        "unencrypted, so spezichat warns); adds to [fog] allow_http_nodes",
    )
    group.add_argument(
        "--interface",
        action="append",
        metavar="ADDR",
        help="browse mDNS only on the interface with this address (repeatable), for "
        "example 127.0.0.1; default: [fog] interfaces, else all",
    )


def _allow_entry(text: str) -> str:
    """Checks an ``--allow-http-node`` value (``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``)."""
    from backends.fog.plain_http import parse_allow_entry

    try:
        parse_allow_entry(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text.strip()


def warn_plain_http(config: Any) -> None:
    """Print the plain-HTTP token warning to stderr (before any request is sent)."""
    import sys

    warning = config.plain_http_warning()
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)


def client_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The fog settings given on the command line (for ``tui.wiring.fog_config``)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "ca_cert", None):
        overrides["ca_cert"] = args.ca_cert
    if getattr(args, "token_command", None):
        overrides["token_command"] = args.token_command
    if getattr(args, "insecure", False):
        overrides["insecure"] = True
    if getattr(args, "interface", None):
        overrides["interfaces"] = tuple(args.interface)
    if getattr(args, "allow_http_node", None):
        overrides["allow_http_nodes"] = tuple(args.allow_http_node)
    if getattr(args, "timeout", None) is not None:
        overrides["discovery_timeout"] = args.timeout
    return overrides


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "discover",
        help="list the fog nodes on the local network",
        description=(
            "Browse mDNS for fog nodes (and check the manual nodes from the config), "
            "health-check each with GET /v1/models, and list them with their models. "
            "Exit codes: 0 a usable node was found, 1 none was, 2 usage."
        ),
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=float,
        metavar="S",
        help="seconds to browse (default: [fog] discovery_timeout, 2)",
    )
    parser.add_argument("--json", action="store_true", help="print the nodes as JSON")
    add_client_options(parser)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from backends.errors import LLMError
    from tui.commands.common import fail, load_settings, usage_error

    if args.timeout is not None and not 0 < args.timeout <= 600:
        return usage_error("discover", "--timeout must be between 0 and 600 seconds")
    settings = load_settings()
    if settings is None:
        return 1
    try:
        from backends.fog.discovery import discover
        from tui.wiring import fog_config

        config = fog_config(settings, client_overrides(args))
        warn_plain_http(config)
        nodes = asyncio.run(discover(config))
    except LLMError as error:
        return fail(error)
    if args.json:
        json.dump([node_dict(node) for node in nodes], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(nodes)
    if any(node.status == "ok" for node in nodes):
        return 0
    if not nodes:
        from backends.fog.errors import FogNodeNotFoundError

        where = ", ".join(config.interfaces) or "all interfaces"
        return fail(
            FogNodeNotFoundError(
                reason=f"Nothing answered the mDNS browse on {where} within "
                f"{config.discovery_timeout:g} s, and no manual node is configured."
            )
        )
    return 1


def node_dict(node: Any) -> dict[str, Any]:
    """A node for ``--json``: its error's suggestion is the command line's advice."""
    from tui.advice import cli_advice

    data: dict[str, Any] = node.to_dict()
    if node.error is not None and isinstance(data.get("error"), dict):
        data["error"]["suggestion"] = cli_advice(node.error)
    return data


def print_table(nodes: list[Any]) -> None:
    """The nodes as a table for people (``--json`` is the exact form).

    Names, TXT-derived addresses, model ids and errors come from the network: they are
    shown as plain :class:`rich.text.Text` (never parsed as markup) with control
    characters neutralised, whether stdout is a terminal or not.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from backends.untrusted import one_line, printable
    from tui.advice import cli_advice

    console = Console()
    if not nodes:
        console.print("No fog nodes found.", style="bold")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "ADDRESS", "TLS", "STATUS", "LATENCY", "MODELS"):
        table.add_column(column, overflow="fold")
    for node in nodes:
        address = node.url or (node.urls()[0] if node.addresses else "")
        latency = f"{node.latency_ms:.0f} ms" if node.latency_ms is not None else ""
        style = {"ok": "green", "refused": "yellow"}.get(node.status, "red")
        table.add_row(
            Text(one_line(node.name)),
            Text(one_line(address.split("://", 1)[-1])),
            "yes" if node.tls else "no",
            Text(one_line(node.status), style=style),
            latency,
            Text(", ".join(one_line(model) for model in node.models)),
        )
    console.print(table)
    for node in nodes:
        if node.error is not None:
            error = node.error
            heading = Text("\n")
            heading.append(one_line(node.name), style="bold")
            heading.append(f": {printable(error.description)}")
            console.print(heading)
            console.print(Text(f"  why: {printable(error.reason)}"))
            console.print(Text(f"  fix: {printable(cli_advice(error))}"))


async def list_fog(settings: Any) -> list[tuple[str, str]]:
    """``spezichat models --backend fog``: the models of the nodes found (model, node)."""
    from backends.fog.discovery import discover
    from tui.wiring import fog_config

    config = fog_config(settings)
    warn_plain_http(config)
    nodes = await discover(config)
    rows: dict[str, list[str]] = {}
    for node in nodes:
        for model in node.models:
            rows.setdefault(model, []).append(node.name)
    if not rows:
        from backends.fog.platform import FogPlatform

        raise FogPlatform(config).no_node_error(nodes)
    return [(model, ", ".join(names)) for model, names in sorted(rows.items())]
