"""The chat app with the fog backend: a discovered node answers in the chat."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.fog.advertise import FogAdvertiser
from backends.fog.certs import NodeCertificates
from backends.runner import Runner
from tests.fog.conftest import LOOPBACK, MODEL, TOKEN
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, replies, send
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store


async def test_chat_with_a_fog_node(
    tls_server: OpenAITestServer,
    node_certs: NodeCertificates,
    service_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPEZICHAT_FOG_TOKEN", TOKEN)
    settings = Settings()
    settings.general.backend = "fog"
    settings.general.model = MODEL
    settings.fog.ca_cert = str(node_certs.ca_cert)
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    tls_server.script(Reply(text="Hello from the **fog**.", chunk_size=4))
    async with FogAdvertiser(tls_server.port, name=service_name, interfaces=LOOPBACK):
        with Store(tmp_path / "history.db") as store:
            app = SpeziChatApp(settings=settings, store=store, runner=Runner())
            async with app.run_test(size=SIZE) as pilot:
                await send(pilot, "Hello?")
                assert replies(pilot)[-1].text == "Hello from the **fog**."
                assert chat(pilot).status.backend == "fog"
    assert tls_server.chat_requests[-1].bearer == TOKEN
    assert tls_server.chat_requests[-1].body["messages"][-1]["content"] == "Hello?"
