"""``spezichat mcp``: list the MCP tool servers and their tools, import other clients'."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.mcp.manager import McpManager, ServerInfo


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mcp",
        help="list MCP tool servers, import other clients' servers",
        description=(
            "MCP tool servers are configured as [mcp.servers.NAME] tables in config.toml; "
            "their tools are offered to the model as NAME__tool next to --tools functions."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="start the enabled servers and list their state and tools",
        description="Start every enabled server, wait until each is ready or failed, "
        "print its state (and why it failed) and its tools, then stop them all.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON (exact text)")
    importing = actions.add_parser(
        "import",
        help='add the servers of an {"mcpServers": ...} JSON file to config.toml',
        description='Read the {"mcpServers": {...}} JSON other MCP clients use (Claude '
        "Desktop, Cursor, VS Code's servers) and add each server as [mcp.servers.NAME] to "
        "config.toml; the rest of the file stays as it is.",
    )
    importing.add_argument("file", metavar="FILE", help="the JSON file")
    importing.add_argument(
        "--replace", action="store_true", help="replace servers of the same name"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        return _import(args.file, replace=args.replace)
    return _list(as_json=args.json)


def _import(file: str, *, replace: bool) -> int:
    import json
    from pathlib import Path

    from backends.errors import LLMError
    from backends.mcp.config import import_mcp_json
    from backends.untrusted import one_line
    from tui.commands.common import fail, load_settings

    path = Path(file).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return fail(
            LLMError(
                "The MCP servers file could not be read.",
                reason=f"{path}: {one_line(str(exc))[:300]}",
                suggestion='Pass a JSON file such as {"mcpServers": {"files": '
                '{"command": "npx", "args": [...]}}}.',
            )
        )
    try:
        tables, skipped = import_mcp_json(data)
    except LLMError as error:
        return fail(error)
    settings = load_settings()
    if settings is None:
        return 1
    servers = dict(settings.mcp.servers) if isinstance(settings.mcp.servers, dict) else {}
    added: list[str] = []
    for name, table in tables.items():
        if name in servers and not replace:
            skipped.append(f"{name}: already in config.toml (--replace replaces it)")
            continue
        servers[name] = table
        added.append(name)
    for note in skipped:
        print(f"skipped {one_line(note)}", file=sys.stderr)
    if not added:
        print("No server was added.", file=sys.stderr)
        return 0 if tables else 1
    settings.mcp.servers = servers
    try:
        where = settings.save()
    except LLMError as error:
        return fail(error)
    names = ", ".join(one_line(name) for name in added)
    print(f"Added {len(added)} MCP server(s) to {where}: {names}")
    return 0


def _list(*, as_json: bool) -> int:
    import asyncio
    import json

    from tui.commands.common import load_settings
    from tui.wiring import mcp_manager

    settings = load_settings()
    if settings is None:
        return 1
    manager = mcp_manager(settings)
    if manager is None:
        if as_json:
            print("[]")
        else:
            print(
                "No MCP servers are configured. Add [mcp.servers.NAME] tables to "
                "config.toml, or import another client's with `spezichat mcp import FILE`."
            )
        return 0

    async def started() -> list[ServerInfo]:
        try:
            manager.start()
            await manager.wait()
            return manager.servers()
        finally:
            await manager.aclose()

    servers = asyncio.run(started())
    names = _names(manager, servers)
    if as_json:
        print(json.dumps([info.to_dict(names) for info in servers], ensure_ascii=False, indent=2))
    else:
        for line in describe(servers, names):
            print(line)
    return 0 if all(info.error is None for info in servers) else 1


def _names(manager: McpManager, servers: list[ServerInfo]) -> dict[tuple[str, str], str]:
    """The names the model sees, as when the servers were ready."""
    from backends.mcp.tools import assign_names

    remote = [tool for info in servers for tool in info.tools]
    return {
        (tool.server, tool.name): name
        for tool, name in zip(remote, assign_names(remote), strict=True)
    }


def describe(servers: list[ServerInfo], names: dict[tuple[str, str], str]) -> list[str]:
    """Lines for people: each server, its state, why it failed, its tools (neutralised)."""
    from backends.untrusted import one_line
    from tui.advice import cli_advice

    lines: list[str] = []
    for info in servers:
        config = info.config
        kind = f"{config.transport}: {one_line(config.target)[:100]}" if config else "invalid"
        lines.append(f"{one_line(info.name)}  [{info.state.value}]  {kind}")
        if config is not None and config.approve == "always":
            lines.append('  calls run without asking (approve = "always")')
        if info.error is not None:
            lines.append(f"  error: {one_line(info.error.description)}")
            lines.append(f"  why: {one_line(info.error.reason)}")
            lines.append(f"  fix: {one_line(cli_advice(info.error))}")
        for tool in info.tools:
            name = names.get((info.name, tool.name), tool.name)
            summary = one_line(tool.description).strip()
            lines.append(f"  {one_line(name)}" + (f"  {summary[:200]}" if summary else ""))
        if info.log_path is not None and info.error is not None:
            lines.append(f"  log: {info.log_path}")
    return lines
