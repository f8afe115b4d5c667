"""The MCP servers screen, and what the app does with MCP servers around each reply.

The screen (command palette: "MCP servers") lists every configured server with its
state (not started, starting, ready, failed with why, disabled), its tools with their
descriptions, and its log file; ``r`` restarts the highlighted server, ``d`` disables it
(for this run). Names, descriptions and errors come from servers: shown as plain text,
control characters neutralised.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from backends.untrusted import one_line, printable
from tui import keymap
from tui.advice import advice_in, app_advice

if TYPE_CHECKING:
    from backends.mcp.manager import McpManager, ServerInfo
    from backends.session import Session

_STATE_STYLE = {
    "ready": "green",
    "starting": "yellow",
    "failed": "red",
    "disabled": "dim",
    "not started": "dim",
}

_policy_sessions: weakref.WeakSet[Any] = weakref.WeakSet()
"""Sessions whose approver already runs ``approve = "always"`` servers' calls unasked."""


async def prepare_session(app: Any, session: Session[Any]) -> None:
    """Before a reply: start the MCP servers when the first chat needs them, wait for the
    ones starting (each bounded by its timeout), offer the ready ones' tools to
    ``session`` and tell about the ones that failed."""
    mcp: McpManager | None = app.mcp
    if mcp is None:
        return
    mcp.start()  # the ones not started yet; failed and disabled ones stay so
    if mcp.starting:
        app.notify("Starting MCP servers…", timeout=3, markup=False)
        await mcp.wait()
    offer(app, session)
    told: set[int] = app.mcp_errors_told
    for info in mcp.servers():
        if info.error is not None and id(info.error) not in told:
            told.add(id(info.error))
            app.notify(
                printable(f"{info.error.reason}\n{advice_in(app, info.error)}"),
                title=one_line(f"MCP server {info.name}: {info.error.description}"),
                severity="error",
                timeout=15,
                markup=False,
            )


def offer(app: Any, session: Session[Any]) -> None:
    """Give ``session`` the Python functions and the ready MCP servers' tools."""
    from backends.mcp.tools import approver_with_policy
    from tui.wiring import offer_tools

    tools = offer_tools(app.tools, app.mcp)
    if tuple(session.schema.functions) != tools:
        session.schema = dataclasses.replace(session.schema, functions=tools)
    if session.approver is not None and session not in _policy_sessions:
        session.approver = approver_with_policy(lambda: session.schema.functions, session.approver)
        _policy_sessions.add(session)


def server_line(info: ServerInfo) -> Text:
    state = info.state.value
    line = Text(one_line(info.name)[:40], style="bold")
    line.append(f"  {state}", style=_STATE_STYLE.get(state, ""))
    if info.tools:
        line.append(f"  {len(info.tools)} tool(s)", style="dim")
    return line


def server_details(info: ServerInfo, names: dict[tuple[str, str], str]) -> Text:
    """Everything about one server, as plain text."""
    text = Text()
    config = info.config
    text.append(one_line(info.name), style="bold")
    text.append(f"  {info.state.value}\n", style=_STATE_STYLE.get(info.state.value, ""))
    if config is not None:
        text.append(f"{config.transport}: {one_line(config.target)}\n", style="dim")
        if config.approve == "always":
            text.append('Calls run without asking (approve = "always").\n', style="yellow")
    if info.error is not None:
        text.append(f"\n{printable(info.error.description)}\n", style="bold red")
        text.append(f"{printable(info.error.reason)}\n")
        text.append(f"→ {printable(app_advice(info.error))}\n")
    if info.tools:
        text.append("\nTools\n", style="bold")
        for tool in info.tools:
            name = names.get((info.name, tool.name), tool.name)
            text.append(f"  {one_line(name)}", style="bold")
            if tool.name != name:
                text.append(f" ({one_line(tool.name)})", style="dim")
            summary = printable(tool.description).strip()
            text.append(f"\n    {summary}\n" if summary else "\n")
    if info.log_path is not None:
        text.append(f"\nLog: {info.log_path}\n", style="dim")
    return text


class McpScreen(ModalScreen[None]):
    """Lists the MCP servers; r restarts, d disables the highlighted one, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(
        "dialog.close", "mcp.restart", "mcp.disable"
    )

    def __init__(self, manager: McpManager | None, reserved: tuple[str, ...] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self.manager = manager
        self.reserved = reserved
        self._unlisten: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="mcp"):
            yield Static("MCP servers", classes="dialog-title")
            yield OptionList(id="mcp-servers")
            with VerticalScroll(id="mcp-details"):
                yield Static(id="mcp-info")
            yield Static(
                "↑↓ choose · r restart · d disable (this run) · Esc close",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        manager = self.manager
        if manager is None:
            self.query_one("#mcp-info", Static).update(
                Text(
                    "No MCP servers are configured. Add [mcp.servers.NAME] tables to "
                    "config.toml (see the README), or import another client's with "
                    "`spezichat mcp import FILE`, then restart spezichat."
                )
            )
            return
        self._unlisten = manager.add_listener(self.refresh_servers)
        manager.start()  # to see them is to want them: the ones not started yet start
        self.refresh_servers()
        self.query_one(OptionList).focus()

    def on_unmount(self) -> None:
        if self._unlisten is not None:
            self._unlisten()

    def refresh_servers(self) -> None:
        found = self.query(OptionList)
        if self.manager is None or not self.is_attached or not found:
            return  # a change reported while the screen closes
        servers = self.manager.servers()
        options = found.first()
        keep = options.highlighted or 0
        options.clear_options()
        options.add_options([Option(server_line(info), id=info.name) for info in servers])
        if servers:
            options.highlighted = min(keep, len(servers) - 1)
        self._show_details()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_details()

    def _current(self) -> ServerInfo | None:
        if self.manager is None:
            return None
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None or index >= options.option_count:
            return None
        name = options.get_option_at_index(index).id
        return self.manager.server(name) if name is not None else None

    def _show_details(self) -> None:
        info = self._current()
        if info is None or self.manager is None:
            return
        names = self.manager.tool_names(self.reserved)
        for widget in self.query("#mcp-info").results(Static):
            widget.update(server_details(info, names))

    def action_restart(self) -> None:
        info = self._current()
        if info is not None and self.manager is not None and info.config is not None:
            self.manager.restart(info.name)
            self.notify(f"Restarting {one_line(info.name)}…", timeout=3, markup=False)

    def action_disable(self) -> None:
        info = self._current()
        if info is not None and self.manager is not None and info.config is not None:
            self.manager.disable(info.name)
            self.notify(
                f"{one_line(info.name)} is disabled until you restart it (r).",
                timeout=4,
                markup=False,
            )

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["McpScreen", "offer", "prepare_session", "server_details", "server_line"]
