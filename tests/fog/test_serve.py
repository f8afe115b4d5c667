"""`spezichat fog serve`: a real node (llama.cpp server with the Gemma test model) over TLS
with an API key, advertised over mDNS on 127.0.0.1, used by the fog platform."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from backends import Runner
from backends.fog.auth import StaticToken
from backends.fog.discovery import FogBrowser
from backends.fog.errors import FogUnauthorizedError
from backends.fog.platform import FogPlatform, FogSchema
from backends.fog.serve import API_KEY_FILE, mask_token
from tests.fog.conftest import NodeProcess, mdns_config
from tests.support.processes import children, ended
from tui.cli import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_a_gguf_model_as_a_fog_node(
    gemma_path: Path,
    tmp_path: Path,
    service_name: str,
    node_processes: list[NodeProcess],
) -> None:
    directory = tmp_path / "node"
    assert main(["fog", "init", "--dir", str(directory)]) == 0
    key = (directory / API_KEY_FILE).read_text().strip()
    port = free_port()
    node = NodeProcess(
        [
            *("fog", "serve", "--model", str(gemma_path), "--dir", str(directory)),
            *("--port", str(port), "--interface", "127.0.0.1", "--name", service_name),
            *("--chat-format", "gemma", "--n-ctx", "512", "--alias", "gemma-test"),
        ]
    )
    node_processes.append(node)
    await asyncio.to_thread(node.wait_for_line, "Press Ctrl+C", 120)
    assert f"https://127.0.0.1:{port}" in node.output
    assert "bearer token required" in node.output

    config = mdns_config(service_name, ca=directory / "ca" / "ca.crt", token=StaticToken(key))
    platform = FogPlatform(config)
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model="gemma-test", max_tokens=6))
        session.context.append_user("Say hello.")
        reply = "".join([piece async for piece in session.generate()])
        assert reply.strip()
        # llama.cpp honours the token limit (sent as max_tokens too): 6 tokens are short;
        # without the limit the reply would run to the 512-token context.
        assert len(reply) < 200, reply
    # The node logged the request with the token it carried (masked).
    line = node.wait_for_line("POST /v1/chat/completions")
    assert f"bearer token {mask_token(key)}" in line
    assert key not in node.output

    wrong = FogPlatform(dataclass_with_token(config, "not-the-key"))
    async with Runner([wrong]) as runner:
        session = runner.session(FogSchema(model="gemma-test"))
        session.context.append_user("Say hello.")
        with pytest.raises(FogUnauthorizedError):
            await session.generate().__anext__()

    async with FogBrowser(config) as browser:
        assert await browser.wait_for(lambda nodes: any(n.status == "ok" for n in nodes), 8)
        assert browser.nodes[0].models == ("gemma-test",)
        assert await asyncio.to_thread(node.interrupt) == 0
        assert "Stopped; the node is no longer advertised." in node.output
        assert await browser.wait_for(lambda nodes: not nodes, 8)


def dataclass_with_token(config: object, token: str) -> object:
    import dataclasses

    # The node refuses the token at its health check; no need to browse long for others.
    return dataclasses.replace(  # type: ignore[type-var]
        config, token=StaticToken(token), discovery_timeout=2.0
    )


async def test_a_crashed_inference_process_is_unadvertised_and_replaced(
    gemma_path: Path,
    tmp_path: Path,
    service_name: str,
    node_processes: list[NodeProcess],
) -> None:
    import os
    import signal

    port = free_port()
    node = NodeProcess(
        [
            *("fog", "serve", "--model", str(gemma_path), "--no-tls", "--no-auth"),
            *("--port", str(port), "--interface", "127.0.0.1", "--name", service_name),
            *("--chat-format", "gemma", "--n-ctx", "256", "--alias", "gemma-test"),
        ]
    )
    node_processes.append(node)
    await asyncio.to_thread(node.wait_for_line, "Press Ctrl+C", 120)
    [worker] = children(node.process.pid)
    config = mdns_config(service_name, token=None, allow_http=True)

    async with FogBrowser(config) as browser:
        assert await browser.wait_for(lambda nodes: any(n.status == "ok" for n in nodes), 8)
        os.kill(worker, signal.SIGSEGV)
        # The node says so and sends goodbye packets: clients stop seeing it at once.
        line = await asyncio.to_thread(node.wait_for_line, "no longer advertised", 20)
        assert f"(pid {worker}) was killed by SIGSEGV" in line and "safe mode" in line
        assert await browser.wait_for(lambda nodes: not nodes, 8)
        # A new inference process serves, and the node is advertised again.
        await asyncio.to_thread(node.wait_for_line, "Advertised again", 120)
        assert await browser.wait_for(lambda nodes: any(n.status == "ok" for n in nodes), 8)
    [fresh] = children(node.process.pid)
    assert fresh != worker

    async with Runner([FogPlatform(config)]) as runner:
        session = runner.session(FogSchema(model="gemma-test", max_tokens=4))
        session.context.append_user("Say hello.")
        assert "".join([piece async for piece in session.generate()]).strip()
    # Ctrl+C ends the node and its inference process.
    assert await asyncio.to_thread(node.interrupt) == 0
    assert node.process.returncode == 0
    assert await asyncio.to_thread(ended, fresh)
