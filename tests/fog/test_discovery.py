"""Real mDNS on 127.0.0.1: nodes advertised by another process or in this one are found,
checked and dropped again; waits are bounded by explicit timeouts."""

from __future__ import annotations

import asyncio

import pytest

from backends import Runner
from backends.events import Notice
from backends.fog.advertise import FogAdvertiser
from backends.fog.certs import NodeCertificates
from backends.fog.discovery import FogBrowser, FogNode, NodeEvent
from backends.fog.errors import FogCertificateError, FogDiscoveryError, FogNodeNotFoundError
from backends.fog.platform import FogPlatform, FogSchema
from tests.fog.conftest import LOOPBACK, MODEL, TOKEN, KillableNode, NodeProcess, mdns_config
from tests.support.openai_server import OpenAITestServer, Reply

WAIT = 8.0  # seconds; a node on loopback is found in about 0.1 s


def named(name: str):  # type: ignore[no-untyped-def]
    return lambda nodes: any(n.name == name and n.status != "checking" for n in nodes)


def only(nodes: list[FogNode], name: str) -> FogNode:
    matches = [n for n in nodes if n.name == name]
    assert len(matches) == 1, nodes
    return matches[0]


async def test_node_advertised_by_another_process_is_found_and_disappears(
    tls_server: OpenAITestServer,
    node_certs: NodeCertificates,
    service_name: str,
    node_processes: list[NodeProcess],
) -> None:
    node = NodeProcess(
        [
            *("fog", "advertise", "--port", str(tls_server.port), "--tls"),
            *("--name", service_name, "--interface", "127.0.0.1"),
        ]
    )
    node_processes.append(node)
    line = await asyncio.to_thread(node.wait_for_line, "Press Ctrl+C")
    assert "Advertising" in node.output and "_https._tcp" in node.output, line

    events: list[NodeEvent] = []
    async with FogBrowser(mdns_config(service_name, ca=node_certs.ca_cert)) as browser:
        browser.subscribe(events.append)
        assert await browser.wait_for(named(service_name), WAIT)
        found = only(browser.nodes, service_name)
        assert found.status == "ok", found.error
        assert (found.addresses, found.port, found.tls) == (LOOPBACK, tls_server.port, True)
        assert found.host == "spezillmfog.local"
        assert found.models == (MODEL,)
        assert found.source == "mdns"
        assert found.url == f"https://127.0.0.1:{tls_server.port}"
        # The health check carried the token and the certificate's host name.
        check = tls_server.requests[0]
        assert (check.path, check.bearer, check.headers["host"]) == (
            "/v1/models",
            TOKEN,
            "spezillmfog.local",
        )

        code = await asyncio.to_thread(node.interrupt)
        assert code == 0, node.output
        assert "goodbye" in node.output
        # Goodbye packets: the node leaves the list at once, not when its records expire.
        assert await browser.wait_for(lambda nodes: not nodes, WAIT)
    kinds = [(e.kind, e.node.status) for e in events]
    assert kinds[0] == ("added", "checking")
    assert ("updated", "ok") in kinds
    assert kinds[-1][0] == "removed"


async def test_txt_values_are_hints_and_other_services_are_ignored(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, service_name: str
) -> None:
    lying = FogAdvertiser(
        tls_server.port,
        name=service_name,
        interfaces=LOOPBACK,
        properties={"port": "1", "url": "https://192.0.2.66:443/v1", "tls": "false"},
    )
    printer = FogAdvertiser(
        tls_server.port, tls=False, name=f"Office printer {service_name[-6:]}", interfaces=LOOPBACK
    )
    await asyncio.gather(printer.start(), lying.start())  # probing takes ~1 s each
    async with printer, lying:
        config = mdns_config(service_name, ca=node_certs.ca_cert)
        async with FogBrowser(config) as browser:
            assert await browser.wait_for(named(service_name), WAIT)
            await browser.settle(WAIT)
            [node] = browser.nodes  # the printer is not a fog node
            assert node.port == tls_server.port and node.tls
            assert node.url == f"https://127.0.0.1:{tls_server.port}"
            assert dict(node.txt)["url"] == "https://192.0.2.66:443/v1"
            assert node.status == "ok"


async def test_live_list_and_a_wrong_certificate(
    tls_server: OpenAITestServer,
    node_certs: NodeCertificates,
    other_certs: NodeCertificates,
    service_name: str,
) -> None:
    config = mdns_config(service_name, ca=other_certs.ca_cert)
    async with FogBrowser(config) as browser:
        await asyncio.sleep(0.2)
        assert browser.nodes == []
        async with FogAdvertiser(tls_server.port, name=service_name, interfaces=LOOPBACK):
            # Appears while the browser runs; the check fails on the certificate.
            assert await browser.wait_for(named(service_name), WAIT)
            node = only(browser.nodes, service_name)
            assert node.status == "error"
            assert isinstance(node.error, FogCertificateError)
            assert node.to_dict()["error"]["type"] == "FogCertificateError"
        assert await browser.wait_for(lambda nodes: not nodes, WAIT)


async def test_chat_through_a_discovered_node(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, service_name: str
) -> None:
    tls_server.script(Reply(text="Found you over mDNS."))
    async with FogAdvertiser(tls_server.port, name=service_name, interfaces=LOOPBACK):
        platform = FogPlatform(mdns_config(service_name, ca=node_certs.ca_cert))
        async with Runner([platform]) as runner:
            session = runner.session(FogSchema())  # no model: the node's first one
            session.context.append_user("Where are you?")
            reply = "".join([p async for p in session.generate()])
    assert reply == "Found you over mDNS."
    assert tls_server.chat_requests[0].body["model"] == MODEL
    assert tls_server.chat_requests[0].bearer == TOKEN


async def test_two_nodes_one_killed_the_next_request_goes_to_the_other(
    killable_nodes: list[KillableNode], node_certs: NodeCertificates, service_name: str
) -> None:
    advertisers = [
        FogAdvertiser(node.port, name=f"{service_name} {i}", interfaces=LOOPBACK)
        for i, node in enumerate(killable_nodes)
    ]
    await asyncio.gather(*(a.start() for a in advertisers))  # probing takes ~1 s each
    async with advertisers[0], advertisers[1]:
        platform = FogPlatform(mdns_config(service_name, ca=node_certs.ca_cert))
        async with Runner([platform]) as runner:
            browser = await platform.browser()
            assert await browser.wait_for(
                lambda nodes: len([n for n in nodes if n.status == "ok"]) == 2, WAIT
            )
            keys = {n.port: n.key for n in browser.nodes}
            session = runner.session(FogSchema(model=MODEL))
            session.context.append_user("one")
            assert "".join([p async for p in session.generate()]) == "Echo: one"
            [used_key] = platform.served
            used = next(n for n in killable_nodes if keys[n.port] == used_key)
            other = next(n for n in killable_nodes if n is not used)

            used.kill()  # a crash: no goodbye, the node stays in the list
            session.context.append_user("two")
            notices: list[str] = []
            async for event in session.stream():
                if isinstance(event, Notice):
                    notices.append(event.text)
            assert session.context[-1].content == "Echo: two"
            assert platform.served[keys[other.port]] == 1
            # If the dead node was tried first, the user was told about the failover.
            assert platform.served[used_key] == 1 + len(notices)
            assert all("trying another node" in n for n in notices)


async def test_no_node_on_the_network(service_name: str) -> None:
    platform = FogPlatform(mdns_config(service_name, discovery_timeout=0.3))
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("anyone?")
        with pytest.raises(FogNodeNotFoundError) as caught:
            await session.generate().__anext__()
    assert "127.0.0.1" in caught.value.reason
    assert "manual_nodes" in caught.value.suggestion
    assert session.context[-1].content == "anyone?"  # nothing typed is lost


async def test_discovery_that_cannot_start() -> None:
    # An interface address this machine does not have: mDNS fails locally, no packet sent.
    browser = FogBrowser(mdns_config("unused", interfaces=("203.0.113.5",)))
    with pytest.raises(FogDiscoveryError) as caught:
        await browser.start()
    assert "203.0.113.5" in caught.value.reason
    assert "manual_nodes" in caught.value.suggestion
    await browser.aclose()
