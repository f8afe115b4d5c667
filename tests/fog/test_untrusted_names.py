"""Fog onboarding: node names and model ids from the network are drawn as plain, safe text.

A node advertised over mDNS (on 127.0.0.1) with markup and C1 control sequences in its
name, serving models with markup and ESC sequences in their ids: the node list and the
model step show them as typed (ESC as ``␛``, C1 controls as ``�``) and nothing crashes;
the chosen model id is kept exactly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from textual.widgets import Input, OptionList

from backends.fog.advertise import FogAdvertiser
from backends.fog.certs import NodeCertificates
from tests.fog.conftest import LOOPBACK, TOKEN, server_context
from tests.fog.test_onboarding import Host, settings_for, type_into
from tests.support.openai_server import OpenAITestServer
from tests.tui.helpers import wait_until
from tui.onboarding import fog

SIZE = (120, 30)
ESC = "\x1b"
MODELS = ("fog[/]model", f"clear{ESC}[2Jmodel [/x]")


def controls(text: str) -> list[str]:
    return [ch for ch in text if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) < 0xA0]


def screen_text(app: Host) -> str:
    """What the screen shows; fails when a control character would reach the terminal."""
    svg = app.export_screenshot()
    assert controls(svg) == [], "control characters reached the screen"
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    return "".join(html.unescape(text).replace("\xa0", " ") for text in texts)


@pytest.fixture
def hostile_server(node_certs: NodeCertificates) -> Iterator[OpenAITestServer]:
    with OpenAITestServer(
        api_key=TOKEN, models=MODELS, ssl_context=server_context(node_certs)
    ) as server:
        yield server


async def test_a_node_named_with_markup_and_controls_is_listed_as_text(
    hostile_server: OpenAITestServer, node_certs: NodeCertificates, service_name: str
) -> None:
    # zeroconf refuses ASCII controls in instance names (sending and receiving); C1
    # controls pass: U+009D is OSC and U+009B is CSI on terminals that take 8-bit controls.
    name = f"{service_name} [/x] \x9d0;pwned\x9c \x9b2J node"
    host = Host(settings_for(service_name))
    async with host.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("enter", "enter")  # welcome, the fog branch
        host.screen.query_one("#fog-ca", Input).value = str(node_certs.ca_cert)
        await type_into(pilot, "#fog-token", TOKEN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(host.screen, fog.FogNodesStep), "node list")
        options = host.screen.query_one("#fog-nodes", OptionList)
        async with FogAdvertiser(hostile_server.port, name=name, interfaces=LOOPBACK):
            await wait_until(
                pilot,
                lambda: options.option_count == 1 and not options.get_option_at_index(0).disabled,
                "the node in the list, checked",
            )
            await pilot.pause()
            shown = screen_text(host)
            assert f"{service_name} [/x] �0;pwned� �2J node" in shown
            assert "fog[/]model" in shown and "clear␛[2Jmodel [/x]" in shown
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(host.screen, fog.FogModelStep), "models")
            await pilot.pause()
            shown = screen_text(host)
            assert "fog[/]model" in shown and "clear␛[2Jmodel [/x]" in shown
            await pilot.press("enter")
            await wait_until(pilot, lambda: bool(host.finished), "the end of the flow")
    [settings] = host.finished
    assert settings.general.model in MODELS  # the id exactly as the node listed it
