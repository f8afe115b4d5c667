"""The fog token never goes over plain HTTP to another host without the user's word.

"Another host" is real here: the plain-HTTP node listens on this machine's non-loopback
address (for example 192.0.2.2 on eth0), and mDNS (on 127.0.0.1, as in the other fog
tests) advertises that address. Loopback is exempt from the rules, so a node on
127.0.0.1 would prove nothing; without a non-loopback address the tests are skipped.
Every assertion about the token is made on the requests the node recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import Runner
from backends.events import Event, Notice, TextDelta
from backends.fog.advertise import FogAdvertiser, local_addresses
from backends.fog.auth import StaticToken
from backends.fog.certs import NodeCertificates
from backends.fog.client import probe
from backends.fog.config import FogConfig
from backends.fog.discovery import FogBrowser, FogNode
from backends.fog.errors import FogConnectivityError, FogInsecureNodeError
from backends.fog.platform import FogPlatform, FogSchema
from backends.fog.tls import make_http_client
from tests.fog.conftest import LOOPBACK, MODEL, REPO, TOKEN, manual_config, mdns_config, node_url
from tests.support.openai_server import OpenAITestServer, Reply, _Handler, _Server
from tui.advice import cli_advice
from tui.settings import Settings

WAIT = 8.0


def other_host_address() -> str | None:
    """An IPv4 address of this machine that is not loopback and can be bound, or None."""
    for address in local_addresses():
        if ":" in address:
            continue
        with socket.socket() as probe_socket:
            try:
                probe_socket.bind((address, 0))
            except OSError:
                continue
        return address
    return None


ADDRESS = other_host_address()
pytestmark = pytest.mark.skipif(
    ADDRESS is None, reason="this machine has no non-loopback IPv4 address to serve on"
)


class RemoteNode(OpenAITestServer):
    """The OpenAI test server over plain HTTP on the non-loopback address."""

    def start(self) -> RemoteNode:
        import threading

        assert ADDRESS is not None
        httpd = _Server((ADDRESS, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}"

    @property
    def entry(self) -> str:
        return f"{ADDRESS}:{self.port}"

    def bearers(self) -> list[str | None]:
        return [request.bearer for request in self.requests]


@pytest.fixture
def remote() -> Iterator[RemoteNode]:
    with RemoteNode(api_key=TOKEN, models=(MODEL,)) as server:
        yield server


def advertise(node: RemoteNode, name: str) -> FogAdvertiser:
    """mDNS on loopback announcing the node at its non-loopback address, as _http._tcp.

    The host name is the test's own: address records of a name that other nodes on this
    machine use (spezillmfog.local on 127.0.0.1) would be merged into this node's.
    """
    assert ADDRESS is not None
    return FogAdvertiser(
        node.port,
        tls=False,
        name=name,
        host=f"{name}.local",
        interfaces=LOOPBACK,
        addresses=(ADDRESS,),
    )


def checked(name: str):  # type: ignore[no-untyped-def]
    return lambda nodes: any(n.name == name and n.status != "checking" for n in nodes)


async def found(config: FogConfig, name: str) -> FogNode:
    async with FogBrowser(config) as browser:
        assert await browser.wait_for(checked(name), WAIT)
        await browser.settle(WAIT)
        [node] = browser.nodes
        return node


async def test_discovered_node_is_checked_without_the_token_until_allowed(
    remote: RemoteNode, service_name: str
) -> None:
    async with advertise(remote, service_name):
        node = await found(mdns_config(service_name), service_name)
        assert node.addresses == (ADDRESS,) and not node.loopback and not node.tls
        assert node.status == "refused"
        assert isinstance(node.error, FogInsecureNodeError)
        assert f'"{remote.entry}" to `FogConfig.allow_http_nodes`' in node.error.suggestion
        assert f"--allow-http-node {remote.entry}" in cli_advice(node.error)
        assert f'"{remote.entry}" to allow_http_nodes' in cli_advice(node.error)
        # Health-checked, but without the Authorization header.
        assert remote.requests and remote.bearers() == [None] * len(remote.requests)
        assert all("authorization" not in r.headers for r in remote.requests)

        # Allowed by address and port: checked with the token, and usable.
        seen = len(remote.requests)
        allowed = mdns_config(service_name, allow_http_nodes=(remote.entry,))
        node = await found(allowed, service_name)
        assert node.status == "ok" and node.models == (MODEL,), node.error
        assert remote.bearers()[seen:] == [TOKEN]


async def test_insecure_alone_never_sends_the_token(remote: RemoteNode, service_name: str) -> None:
    """The reported bug: --insecure (allow_http) sent the token to any advertised node."""
    async with advertise(remote, service_name):
        node = await found(mdns_config(service_name, allow_http=True), service_name)
    assert remote.requests, "the node was health-checked"
    assert remote.bearers() == [None] * len(remote.requests)
    # The node wants a token: it is listed with the reason and the option that allows it.
    assert node.status == "error" and node.error is not None
    assert "The token was not sent" in node.error.reason
    assert f"--allow-http-node {remote.entry}" in cli_advice(node.error)


async def test_another_port_of_an_allowed_host_is_not_allowed(
    remote: RemoteNode, service_name: str
) -> None:
    assert ADDRESS is not None
    other_port = f"{ADDRESS}:{remote.port + 1 if remote.port < 65535 else 1}"
    async with advertise(remote, service_name):
        node = await found(mdns_config(service_name, allow_http_nodes=(other_port,)), service_name)
        assert node.status == "refused"
        # A bare address allows every port of that host.
        node = await found(mdns_config(service_name, allow_http_nodes=(ADDRESS,)), service_name)
        assert node.status == "ok", node.error
    assert remote.bearers() == [None] * (len(remote.requests) - 1) + [TOKEN]


async def collect(platform: FogPlatform, remote: RemoteNode) -> tuple[list[Event], int | None]:
    """The events of one chat, and how many requests the node had seen at the Notice."""
    events: list[Event] = []
    at_notice: int | None = None
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("Hello?")
        async for event in session.stream():
            if isinstance(event, Notice) and at_notice is None:
                at_notice = len(remote.requests)
            events.append(event)
    return events, at_notice


async def test_chat_with_an_allowed_node_warns_before_the_token_goes(
    remote: RemoteNode, service_name: str
) -> None:
    remote.script(Reply(text="plain, but allowed"))
    config = mdns_config(service_name, allow_http_nodes=(remote.entry,))
    async with advertise(remote, service_name):
        events, at_notice = await collect(FogPlatform(config), remote)
    [warning] = [e.text for e in events if isinstance(e, Notice)]
    assert at_notice == 0  # the warning came before the first request
    assert "unencrypted" in warning and remote.entry in warning
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "plain, but allowed"
    assert remote.chat_requests[-1].bearer == TOKEN


async def test_a_manual_http_node_counts_as_allowed_and_warns(remote: RemoteNode) -> None:
    config = FogConfig(
        token=StaticToken(TOKEN), manual_nodes=(remote.url,), use_mdns=False, request_timeout=10
    )
    events, at_notice = await collect(FogPlatform(config), remote)
    assert at_notice == 0
    [warning] = [e.text for e in events if isinstance(e, Notice)]
    assert f"{remote.entry} (a manual node)" in warning
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: Hello?"
    assert set(remote.bearers()) == {TOKEN}


async def test_a_redirect_from_https_to_plain_http_is_not_followed(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, remote: RemoteNode
) -> None:
    moved = Reply(status=307, body={}, headers={"Location": f"{remote.url}/v1/models"})
    tls_server.script(moved, route="models")
    config = manual_config(tls_server, ca=node_certs.ca_cert)
    async with make_http_client(config) as http:
        result = await probe(http, [node_url(tls_server)], config)
    assert result.url is None
    assert isinstance(result.error, FogConnectivityError)
    assert "redirect" in result.error.description
    assert f"{remote.url}/v1/models" in result.error.reason
    # The TLS node got the token; the plain-HTTP URL it pointed to got nothing.
    assert tls_server.requests[0].bearer == TOKEN
    assert remote.requests == []

    tls_server.script(Reply(status=308, body={}, headers={"Location": f"{remote.url}/v1"}))
    platform = FogPlatform(config)
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("Hello?")
        with pytest.raises(FogConnectivityError) as caught:
            [e async for e in session.stream()]
    assert "redirect" in caught.value.description
    assert remote.requests == []


# The command line ----------------------------------------------------------------------


def spezichat(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env["SPEZICHAT_FOG_TOKEN"] = TOKEN
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def save_settings(service_name: str, **fog: Any) -> None:
    settings = Settings()
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    for key, value in fog.items():
        setattr(settings.fog, key, value)
    settings.save()


async def test_cli_discover_ask_and_models(remote: RemoteNode, service_name: str) -> None:
    save_settings(service_name)
    async with advertise(remote, service_name):
        refused = await asyncio.to_thread(spezichat, "discover", "--json")
        assert refused.returncode == 1, refused.stderr
        [listed] = json.loads(refused.stdout)
        assert listed["status"] == "refused", listed
        assert listed["addresses"] == [ADDRESS]
        assert f"--allow-http-node {remote.entry}" in listed["error"]["suggestion"]
        assert "unencrypted" not in refused.stderr  # nothing goes in clear: no warning
        assert remote.bearers() == [None] * len(remote.requests)

        seen = len(remote.requests)
        allowed = await asyncio.to_thread(
            spezichat, "discover", "--json", "--allow-http-node", remote.entry
        )
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout)[0]["status"] == "ok"
        assert "Warning: the fog token is sent unencrypted" in allowed.stderr
        assert remote.entry in allowed.stderr
        assert remote.bearers()[seen:] == [TOKEN]

        asked = await asyncio.to_thread(
            spezichat, "ask", "--backend", "fog", "--allow-http-node", remote.entry, "hi"
        )
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout == "Echo: hi"
        assert "the fog token is sent unencrypted" in asked.stderr
        assert remote.entry in asked.stderr
        assert remote.chat_requests[-1].bearer == TOKEN

        bad = await asyncio.to_thread(spezichat, "ask", "--allow-http-node", "a b:1", "hi")
        assert bad.returncode == 2 and "--allow-http-node" in bad.stderr

        save_settings(service_name, allow_http_nodes=[remote.entry])
        models = await asyncio.to_thread(spezichat, "models", "--backend", "fog")
        assert models.returncode == 0, models.stderr
        assert models.stdout.split() == [MODEL]
        assert "the fog token is sent unencrypted" in models.stderr


async def test_loopback_plain_http_stays_silent(service_name: str) -> None:
    save_settings(service_name, manual_nodes=[], allow_http_nodes=["127.0.0.1"])
    with OpenAITestServer(api_key=TOKEN, models=(MODEL,)) as server:
        async with FogAdvertiser(server.port, tls=False, name=service_name, interfaces=LOOPBACK):
            result = await asyncio.to_thread(spezichat, "discover", "--json")
    assert result.returncode == 0, result.stderr
    assert "unencrypted" not in result.stderr
    assert server.requests[0].bearer == TOKEN


# The app -------------------------------------------------------------------------------


async def test_app_shows_the_warning_in_the_conversation(
    remote: RemoteNode, service_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.tui.helpers import SIZE, items, replies, send
    from tui.app import SpeziChatApp
    from tui.store import Store
    from tui.widgets.messages import NoticeItem

    monkeypatch.setenv("SPEZICHAT_FOG_TOKEN", TOKEN)
    settings = Settings()
    settings.general.backend = "fog"
    settings.general.model = MODEL
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    settings.fog.allow_http_nodes = [remote.entry]
    remote.script(Reply(text="Hello over plain HTTP."))
    async with advertise(remote, service_name):
        with Store(tmp_path / "history.db") as store:
            app = SpeziChatApp(settings=settings, store=store, runner=Runner())
            async with app.run_test(size=SIZE) as pilot:
                await send(pilot, "Hello?")
                assert replies(pilot)[-1].text == "Hello over plain HTTP."
                [notice] = [i for i in items(pilot) if isinstance(i, NoticeItem)]
                assert "the fog token is sent unencrypted" in notice.text
                assert remote.entry in notice.text
    assert remote.chat_requests[-1].bearer == TOKEN


async def test_onboarding_asks_before_the_token_goes_and_stores_the_node(
    remote: RemoteNode, service_name: str
) -> None:
    from textual.widgets import OptionList

    from tests.fog.test_onboarding import Host, settings_for, type_into
    from tests.tui.helpers import wait_until
    from tui.onboarding import fog
    from tui.screens.dialogs import ConfirmDialog

    host = Host(settings_for(service_name))
    async with host.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter", "enter")  # welcome, the fog branch
        await type_into(pilot, "#fog-token", TOKEN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(host.screen, fog.FogNodesStep), "node list")
        step = host.screen
        assert isinstance(step, fog.FogNodesStep)
        options = step.query_one("#fog-nodes", OptionList)

        def listed(text: str) -> bool:
            return options.option_count == 1 and text in str(options.get_option_at_index(0).prompt)

        async with advertise(remote, service_name):
            await wait_until(pilot, lambda: listed("allow list"), "the refused node")
            await wait_until(pilot, lambda: bool(remote.requests), "its tokenless check")
            assert not options.get_option_at_index(0).disabled  # it can be chosen: to ask
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(host.screen, ConfirmDialog), "consent")
            dialog = host.screen
            assert isinstance(dialog, ConfirmDialog)
            assert "unencrypted" in str(dialog.title_text) and remote.entry in dialog.body
            await pilot.click("#no")
            await wait_until(pilot, lambda: host.screen is step, "back to the list")
            assert step.state.settings.fog.allow_http_nodes == []
            assert remote.bearers() == [None] * len(remote.requests)

            # The list is searched again when the step shows again: wait for the node.
            await wait_until(
                pilot,
                lambda: listed("allow list") and options.highlighted == 0,
                "the refused node again",
            )
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(host.screen, ConfirmDialog), "consent")
            await pilot.click("#yes")
            await wait_until(pilot, lambda: listed(MODEL) and listed(" ms"), "checked with token")
            assert remote.bearers()[-1] == TOKEN
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(host.screen, fog.FogModelStep), "models")
            await pilot.press("enter")
            await wait_until(pilot, lambda: bool(host.finished), "the end of the flow")
    [settings] = host.finished
    assert settings.fog.allow_http_nodes == [remote.entry]
    assert (settings.general.backend, settings.general.model) == ("fog", MODEL)
