"""Fixtures for the fog tests: node certificates, TLS test servers, advertised nodes.

Everything stays on 127.0.0.1: servers listen there, mDNS runs only on that interface,
and every test uses its own service name so that nodes other processes advertise on
this machine (a demo, another test run) are never mistaken for the test's node.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.fog.auth import StaticToken
from backends.fog.certs import NodeCertificates, create_node_certificates
from backends.fog.config import FogConfig
from tests.support.openai_server import OpenAITestServer
from tests.support.processes import default_sigint

REPO = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "tui"]
TOKEN = "fog-test-token-0123456789"
MODEL = "fog-model"
LOOPBACK = ("127.0.0.1",)


@pytest.fixture(scope="session")
def node_certs(tmp_path_factory: pytest.TempPathFactory) -> NodeCertificates:
    """A node's CA and server certificate for spezillmfog.local, as `fog init` makes them."""
    return create_node_certificates(tmp_path_factory.mktemp("node"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> NodeCertificates:
    """Another node's certificates: its CA did not sign ``node_certs``' server certificate."""
    return create_node_certificates(tmp_path_factory.mktemp("other-node"))


def server_context(certs: NodeCertificates, seen_sni: list[str] | None = None) -> ssl.SSLContext:
    """A server-side TLS context with the node's certificate; records SNI names."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    if seen_sni is not None:

        def remember(_sock: Any, name: str | None, _ctx: Any) -> None:
            seen_sni.append(name or "")

        context.sni_callback = remember
    return context


@pytest.fixture
def sni_names() -> list[str]:
    return []


@pytest.fixture
def tls_server(node_certs: NodeCertificates, sni_names: list[str]) -> Iterator[OpenAITestServer]:
    """An OpenAI-compatible node on 127.0.0.1 over TLS that requires ``TOKEN``."""
    with OpenAITestServer(
        api_key=TOKEN, models=(MODEL,), ssl_context=server_context(node_certs, sni_names)
    ) as server:
        yield server
        assert not server.spec_violations, server.spec_violations


def node_url(server: OpenAITestServer) -> str:
    scheme = "https" if server.ssl_context is not None else "http"
    return f"{scheme}://127.0.0.1:{server.port}"


@pytest.fixture
def service_name() -> str:
    """A fog service name unique to the test (still recognised: it names the filter)."""
    return f"spezichat-test-{uuid.uuid4().hex[:10]}"


def manual_config(*servers: OpenAITestServer, ca: Path | None = None, **kw: Any) -> FogConfig:
    """Client configuration that reaches ``servers`` as manual nodes, without mDNS."""
    values: dict[str, Any] = {
        "ca_cert": ca,
        "token": StaticToken(TOKEN),
        "manual_nodes": tuple(node_url(s) for s in servers),
        "use_mdns": False,
        "discovery_timeout": 1.0,
        "health_timeout": 3.0,
        "request_timeout": 10.0,
    }
    values.update(kw)
    return FogConfig(**values)


def mdns_config(service_name: str, *, ca: Path | None = None, **kw: Any) -> FogConfig:
    """Client configuration browsing mDNS on 127.0.0.1 for the test's service name."""
    values: dict[str, Any] = {
        "ca_cert": ca,
        "token": StaticToken(TOKEN),
        "service_names": (service_name,),
        "interfaces": LOOPBACK,
        "discovery_timeout": 5.0,
        "health_timeout": 3.0,
        "request_timeout": 10.0,
    }
    values.update(kw)
    return FogConfig(**values)


class NodeProcess:
    """`spezichat fog ...` running in a child process, read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._new_line = threading.Condition()
        self.process = subprocess.Popen(
            [*ENTRY, *args],
            cwd=REPO,
            env=env or os.environ.copy(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=default_sigint,  # interrupt() sends Ctrl+C
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_line(self, text: str, timeout: float = 30.0) -> str:
        """The first output line containing ``text``; fails after ``timeout`` seconds."""
        with self._new_line:
            found = self._new_line.wait_for(
                lambda: any(text in line for line in self.lines) or not self._reader.is_alive(),
                timeout,
            )
            for line in self.lines:
                if text in line:
                    return line
        output = "\n".join(self.lines)
        raise AssertionError(f"no line with {text!r} (waited={found}); output:\n{output}")

    def interrupt(self, timeout: float = 20.0) -> int:
        """Send Ctrl+C (SIGINT) and wait for the exit status."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def node_processes() -> Iterator[list[NodeProcess]]:
    """Child processes started by a test; killed at the end if still running."""
    processes: list[NodeProcess] = []
    yield processes
    for process in processes:
        process.stop()


class KillableNode:
    """A TLS fog node (echoing prompts) in a child process; :meth:`kill` is a crash."""

    def __init__(self, certs: NodeCertificates) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fog.node_server",
                *(str(certs.server_cert), str(certs.server_key), TOKEN, MODEL),
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("port "), line
        self.port = int(line.split()[1])
        self.url = f"https://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def killable_nodes(node_certs: NodeCertificates) -> Iterator[list[KillableNode]]:
    """Two TLS nodes in child processes, killed at the end."""
    nodes = [KillableNode(node_certs) for _ in range(2)]
    yield nodes
    for node in nodes:
        node.kill()
