"""Fixtures for the MCP tests: real MCP servers written with the SDK, started by the tests.

``demo_server.py`` runs as a stdio server (a subprocess that spezichat starts); the
``http_mcp`` fixture serves the same tools over streamable HTTP on 127.0.0.1 (uvicorn
in a thread, on an ephemeral port).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import openai_server

__all__ = ["openai_server"]

DEMO = str(Path(__file__).with_name("demo_server.py"))
BOUND_S = 60.0
"""Generous bound for things that must happen: a hang check, not a measure of speed."""


def demo(*flags: str, **table: Any) -> dict[str, Any]:
    """An ``[mcp.servers.NAME]`` table that starts the demo server over stdio."""
    return {"command": sys.executable, "args": [DEMO, *flags], **table}


def write_config(text: str) -> Path:
    """Write config.toml where the (isolated) settings are read from."""
    from tui.settings import config_path

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def toml_server(name: str, *flags: str, extra: str = "") -> str:
    args = ", ".join(f'"{arg}"' for arg in (DEMO, *flags))
    return f'[mcp.servers.{name}]\ncommand = "{sys.executable}"\nargs = [{args}]\n{extra}\n'


def pids_alive(pid_file: Path) -> list[int]:
    """The demo servers listed in ``pid_file`` that still run (zombies count as ended)."""
    alive = []
    for line in pid_file.read_text().split() if pid_file.exists() else ():
        pid = int(line)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except FileNotFoundError:
            continue
        alive.append(pid)
    return alive


def wait_ended(pid_file: Path) -> list[int]:
    """Wait (bounded) until the servers in ``pid_file`` ended; returns those still alive."""
    deadline = time.monotonic() + BOUND_S
    while pids_alive(pid_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids_alive(pid_file)


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where the demo servers write their process ids; any left running are killed."""
    path = tmp_path / "demo-pids.txt"
    yield path
    for pid in pids_alive(path):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def http_mcp() -> Iterator[str]:
    """The demo server over streamable HTTP on loopback; yields its URL."""
    import uvicorn

    from tests.mcp.demo_server import app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app("web").streamable_http_app(), log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the HTTP MCP server did not start"
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(BOUND_S)
    sock.close()
