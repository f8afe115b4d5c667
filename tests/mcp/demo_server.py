"""A small MCP server written with the SDK, for the tests and the benchmark.

    python demo_server.py [--name NAME] [--exit-at-start] [--hang-at-start]

speaks MCP over stdin/stdout; :func:`app` is the same server for streamable HTTP (see
``conftest.http_server``). Tools: ``echo``, ``add``, ``fail`` (an error result),
``crash`` (the process ends mid-call), ``hang`` (never answers), ``shout`` (a result and
a description with terminal control sequences).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def app(name: str = "demo") -> MCPServer:
    server = MCPServer(name, log_level="ERROR")

    @server.tool()
    def echo(text: str) -> str:
        """Repeat the text."""
        print(f"echo called with {len(text)} characters", file=sys.stderr, flush=True)
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the reason given."""
        raise ToolError(f"refused: {reason}")

    @server.tool()
    def crash() -> str:
        """Ends the server process in the middle of the call."""
        print("crashing now", file=sys.stderr, flush=True)
        os._exit(3)

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        import anyio

        await anyio.sleep(3600)
        return "too late"

    @server.tool(description="Shout \x1b]52;c;aGk=\x07 the text \x1b[31mred\x1b[0m.")
    def shout(text: str) -> str:
        return f"\x1b[2J{text.upper()}\x1b]0;title\x07"

    return server


def main(argv: list[str]) -> None:
    name = argv[argv.index("--name") + 1] if "--name" in argv else "demo"
    pid_file = os.environ.get("DEMO_PID_FILE")
    if pid_file:  # the tests check that spezichat ends the servers it started
        with open(pid_file, "a", encoding="utf-8") as pids:
            pids.write(f"{os.getpid()}\n")
    print(f"demo server {name} starting", file=sys.stderr, flush=True)
    if "--exit-at-start" in argv:
        print("fatal: no config for the demo server", file=sys.stderr, flush=True)
        sys.exit(2)
    if "--hang-at-start" in argv:
        time.sleep(3600)
    app(name).run()


if __name__ == "__main__":
    main(sys.argv[1:])
