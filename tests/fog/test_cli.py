"""The issue's Must show, with the real commands: `fog init`, a node advertised over mDNS
on loopback with TLS and a token, `discover --json`, `ask --backend fog` with and without
the CA certificate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.fog.certs import NodeCertificates
from backends.fog.serve import API_KEY_FILE
from tests.fog.conftest import MODEL, REPO, NodeProcess, server_context
from tests.support.openai_server import OpenAITestServer, Reply
from tui.settings import Settings

OPENAI_KEY = "sk-openai-key-that-must-not-travel-9876"


def spezichat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=REPO,
        env=env or os.environ.copy(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Node:
    def __init__(self, directory: Path, server: OpenAITestServer, token: str, name: str) -> None:
        self.directory = directory
        self.server = server
        self.token = token
        self.name = name
        self.ca = directory / "ca" / "ca.crt"


@pytest.fixture
def node(tmp_path: Path, service_name: str, node_processes: list[NodeProcess]) -> Iterator[Node]:
    """`fog init`, a TLS server with its certificate and key, advertised by `fog advertise`."""
    directory = tmp_path / "node"
    assert spezichat("fog", "init", "--dir", str(directory)).returncode == 0
    token = (directory / API_KEY_FILE).read_text().strip()
    certs = NodeCertificates(directory, "spezillmfog.local")
    # Clients recognise only this test's node: the service name is in their settings.
    settings = Settings()
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    settings.save()
    with OpenAITestServer(
        api_key=token, models=(MODEL,), ssl_context=server_context(certs)
    ) as server:
        advertiser = NodeProcess(
            [
                *("fog", "advertise", "--port", str(server.port), "--tls"),
                *("--name", f"{service_name} node", "--interface", "127.0.0.1"),
            ]
        )
        node_processes.append(advertiser)
        advertiser.wait_for_line("Press Ctrl+C")
        yield Node(directory, server, token, f"{service_name} node")


def client_env(node: Node, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env["SPEZICHAT_FOG_TOKEN"] = node.token
    env["OPENAI_API_KEY"] = OPENAI_KEY
    env.update(extra)
    return env


def test_discover_lists_the_node(node: Node) -> None:
    result = spezichat("discover", "--json", "--ca-cert", str(node.ca), env=client_env(node))
    assert result.returncode == 0, result.stderr
    [listed] = json.loads(result.stdout)
    assert listed["name"] == node.name
    assert listed["tls"] is True and listed["status"] == "ok"
    assert listed["addresses"] == ["127.0.0.1"] and listed["port"] == node.server.port
    assert listed["models"] == [MODEL]
    assert listed["source"] == "mdns" and listed["error"] is None

    table = spezichat("discover", "--ca-cert", str(node.ca), env=client_env(node))
    assert table.returncode == 0
    assert node.name in table.stdout and MODEL in table.stdout


def test_ask_streams_a_reply_and_the_node_saw_the_token(node: Node) -> None:
    node.server.script(Reply(text="Hello from the fog node over TLS.\n"))
    result = spezichat(
        "ask",
        "--backend",
        "fog",
        "--ca-cert",
        str(node.ca),
        "--model",
        MODEL,
        "Hello?",
        env=client_env(node),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the fog node over TLS.\n"
    chat = node.server.chat_requests[0]
    assert chat.bearer == node.token
    assert chat.body["messages"][-1] == {"role": "user", "content": "Hello?"}
    for request in node.server.requests:
        assert OPENAI_KEY not in repr(request.headers)


def test_ask_without_the_ca_fails_naming_the_certificate(node: Node) -> None:
    result = spezichat("ask", "--backend", "fog", "--model", MODEL, "Hello?", env=client_env(node))
    assert result.returncode == 1
    assert result.stdout == ""
    first, why, fix = result.stderr.strip().splitlines()[-3:]
    assert first.startswith("error: ") and "certificate" in first
    assert "could not be verified" in why
    assert "--ca-cert" in fix and "SPEZICHAT_FOG_CA_CERT" in fix
    assert node.server.chat_requests == []

    # The CA from the environment works as well as --ca-cert.
    env = client_env(node, SPEZICHAT_FOG_CA_CERT=str(node.ca))
    ok = spezichat("ask", "--backend", "fog", "--model", MODEL, "Hello?", env=env)
    assert ok.returncode == 0 and ok.stdout == "Echo: Hello?"


def test_token_command_and_models(node: Node) -> None:
    env = client_env(node)
    del env["SPEZICHAT_FOG_TOKEN"]
    command = f"{sys.executable} -c \"print('{node.token}')\""
    result = spezichat(
        "ask",
        "--backend",
        "fog",
        "--ca-cert",
        str(node.ca),
        "--token-command",
        command,
        "hi",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Echo: hi"  # no --model: the node's first model
    assert node.server.chat_requests[-1].body["model"] == MODEL

    models = spezichat(
        "models",
        "--backend",
        "fog",
        "--long",
        env=client_env(node, SPEZICHAT_FOG_CA_CERT=str(node.ca)),
    )
    assert models.returncode == 0, models.stderr
    assert models.stdout.splitlines() == [f"{MODEL}\t{node.name}"]


def test_discover_finds_nothing(service_name: str) -> None:
    settings = Settings()
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    settings.save()
    result = spezichat("discover", "--json", "--timeout", "0.3")
    assert result.returncode == 1
    assert json.loads(result.stdout) == []
    assert "No fog node was found" in result.stderr
    assert "127.0.0.1" in result.stderr


def test_bad_fog_settings_are_reported(service_name: str) -> None:
    settings = Settings()
    settings.fog.strategy = "fastest"
    settings.save()
    result = spezichat("ask", "--backend", "fog", "hi")
    # Checked when config.toml is read: a warning, and the default strategy is used.
    assert result.returncode == 1  # no node on this network
    assert (
        'config.toml: [fog] strategy must be one of "random", "least-busy", "ordered" '
        '(got "fastest")'
    ) in result.stderr
