"""Talking to a node over real TLS on 127.0.0.1 with certificates from `fog init`."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import Runner
from backends.events import TextDelta
from backends.fog.auth import StaticToken
from backends.fog.certs import NodeCertificates
from backends.fog.client import node_client, probe
from backends.fog.errors import FogCertificateError, FogInsecureNodeError
from backends.fog.platform import FogPlatform, FogSchema
from backends.fog.tls import make_http_client
from backends.openai.keys import KeyStore
from tests.fog.conftest import MODEL, TOKEN, manual_config, node_url
from tests.support.openai_server import OpenAITestServer, Reply
from tui.advice import cli_advice

OPENAI_KEY = "sk-openai-secret-must-stay-home-1234"


async def ask(platform: FogPlatform, prompt: str = "Hello fog") -> str:
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL, max_tokens=16))
        session.context.append_user(prompt)
        return "".join([piece async for piece in session.generate()])


async def test_succeeds_with_the_ca_and_sends_only_the_fog_token(
    tls_server: OpenAITestServer,
    node_certs: NodeCertificates,
    sni_names: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An OpenAI key in every place the OpenAI backend would look for one.
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    KeyStore().set(OPENAI_KEY)
    tls_server.script(Reply(text="Hello from the fog node."))

    reply = await ask(FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert)))

    assert reply == "Hello from the fog node."
    paths = [(r.method, r.path) for r in tls_server.requests]
    assert paths == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    for request in tls_server.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["host"] == "spezillmfog.local"
        assert OPENAI_KEY not in repr(request.headers) + repr(request.body)
    # Connected by IP, but the TLS server name (SNI) was the certificate's host.
    assert sni_names and set(sni_names) == {"spezillmfog.local"}
    body = tls_server.chat_requests[0].body
    assert body["model"] == MODEL
    assert body["max_tokens"] == body["max_completion_tokens"] == 16


async def test_refuses_without_the_ca_and_names_the_certificate(
    tls_server: OpenAITestServer,
) -> None:
    platform = FogPlatform(manual_config(tls_server, ca=None))
    with pytest.raises(FogCertificateError) as caught:
        await ask(platform)
    error = caught.value
    assert "certificate" in error.description.lower()
    assert "No root CA certificate is configured" in error.reason
    assert "`FogConfig.ca_cert`" in error.suggestion
    assert "--ca-cert" in cli_advice(error) and "SPEZICHAT_FOG_CA_CERT" in cli_advice(error)
    # Nothing got through: the handshake failed before any HTTP request.
    assert tls_server.requests == []


async def test_refuses_a_certificate_from_another_ca(
    tls_server: OpenAITestServer, other_certs: NodeCertificates
) -> None:
    with pytest.raises(FogCertificateError) as caught:
        await ask(FogPlatform(manual_config(tls_server, ca=other_certs.ca_cert)))
    assert str(other_certs.ca_cert) in caught.value.reason
    assert tls_server.requests == []


async def test_refuses_a_certificate_for_another_host(
    tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    config = manual_config(tls_server, ca=node_certs.ca_cert, expected_host="other.local")
    with pytest.raises(FogCertificateError) as caught:
        await ask(FogPlatform(config))
    assert "other.local" in caught.value.reason
    assert "expected_host" in caught.value.suggestion
    assert tls_server.requests == []


async def test_missing_or_broken_ca_file(tls_server: OpenAITestServer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(FogCertificateError) as caught:
        await ask(FogPlatform(manual_config(tls_server, ca=missing)))
    assert str(missing) in caught.value.description
    broken = tmp_path / "broken.crt"
    broken.write_text("this is not a certificate")
    with pytest.raises(FogCertificateError) as caught:
        await ask(FogPlatform(manual_config(tls_server, ca=broken)))
    assert str(broken) in caught.value.description


async def test_health_check_reports_models_and_latency(
    tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    config = manual_config(tls_server, ca=node_certs.ca_cert)
    async with make_http_client(config) as http:
        found = await probe(http, ["https://127.0.0.1:1", node_url(tls_server)], config)
    # The unreachable address was skipped; the node's URL answered.
    assert found.url == node_url(tls_server)
    assert found.models == (MODEL,)
    assert found.latency_ms is not None and found.latency_ms >= 0
    assert found.error is None


async def test_plain_http_only_on_loopback_or_when_allowed(node_certs: NodeCertificates) -> None:
    config = manual_config(ca=node_certs.ca_cert)
    async with make_http_client(config) as http:
        with pytest.raises(FogInsecureNodeError) as caught:
            node_client(http, "http://192.0.2.10:11434", config)  # refused before connecting
        assert "`FogConfig.allow_http`" in caught.value.suggestion
        assert "--insecure" in cli_advice(caught.value)
        node_client(http, "http://127.0.0.1:11434", config)
        allowed = manual_config(ca=node_certs.ca_cert, allow_http=True)
        node_client(http, "http://192.0.2.10:11434", allowed)


async def test_plain_http_node_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with OpenAITestServer(api_key=TOKEN, models=(MODEL,)) as server:
        server.script(Reply(text="plain but local"))
        platform = FogPlatform(manual_config(server, token=StaticToken(TOKEN)))
        async with Runner([platform]) as runner:
            session = runner.session(FogSchema(model=MODEL))
            session.context.append_user("hi")
            events = [e async for e in session.stream()]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == "plain but local"
        # Plain HTTP keeps the real Host header (no SNI to match) and still no OpenAI key.
        chat = server.chat_requests[0]
        assert chat.headers["host"] == f"127.0.0.1:{server.port}"
        assert OPENAI_KEY not in repr(chat.headers)


def test_node_urls_ipv6_and_manual_nodes() -> None:
    from backends.fog.discovery import FogNode, manual_node
    from backends.fog.errors import FogConnectivityError

    node = FogNode(
        key="n", name="n", host="h", addresses=("192.0.2.4", "fd00::4"), port=8443, tls=True
    )
    assert node.urls() == ("https://192.0.2.4:8443", "https://[fd00::4]:8443")
    assert not node.loopback
    checked = FogNode(
        key="n",
        name="n",
        host="h",
        addresses=("192.0.2.4", "fd00::4"),
        port=8443,
        tls=True,
        url="https://[fd00::4]:8443",
    )
    assert checked.urls()[0] == "https://[fd00::4]:8443"  # the one that answered first
    assert manual_node("https://10.0.0.5").port == 443
    assert manual_node("http://[::1]:11434/v1").loopback
    assert manual_node("http://[::1]:11434/v1").urls() == ("http://[::1]:11434",)
    with pytest.raises(FogConnectivityError) as caught:
        manual_node("ftp://10.0.0.5")
    assert "https://10.0.0.5:443" in caught.value.suggestion
