"""Onboarding branch "fog node": CA and token, the live node list, the node's models."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from textual.app import App
from textual.widgets import Input, OptionList, Static

from backends.fog.advertise import FogAdvertiser
from backends.fog.certs import NodeCertificates
from tests.fog.conftest import LOOPBACK, MODEL, TOKEN
from tests.support.openai_server import OpenAITestServer
from tests.tui.helpers import wait_until
from tui.onboarding import fog
from tui.onboarding.flow import OnboardingFlow
from tui.settings import Settings, config_dir
from tui.wiring import FOG_TOKEN_FILE, fog_config

SIZE = (80, 24)


class Host(App[None]):
    """Runs the onboarding with only the fog branch; collects the finished settings."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.finished: list[Settings] = []

    def on_mount(self) -> None:
        flow = OnboardingFlow(self, self.settings, self.finished.append, branches=[fog.branch()])
        flow.start()


def settings_for(service_name: str) -> Settings:
    settings = Settings()
    settings.fog.service_names = [service_name]
    settings.fog.interfaces = ["127.0.0.1"]
    return settings


async def type_into(pilot: Any, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.insert_text_at_cursor(text)
    await pilot.pause()


async def test_certificate_token_live_node_list_and_model(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, service_name: str
) -> None:
    host = Host(settings_for(service_name))
    async with host.run_test(size=SIZE) as pilot:
        await pilot.press("enter")  # welcome
        await pilot.press("enter")  # the fog branch
        assert isinstance(host.screen, fog.FogAccessStep)

        # A CA path that is not there is refused on the spot; what was typed stays.
        await type_into(pilot, "#fog-ca", "/nonexistent/ca.crt")
        await pilot.press("tab")
        await type_into(pilot, "#fog-token", TOKEN)
        await pilot.press("enter")
        status = host.screen.query_one("#fog-access-status", Static)
        assert "does not exist" in str(status.render())
        assert host.screen.query_one("#fog-token", Input).value == TOKEN
        host.screen.query_one("#fog-ca", Input).value = str(node_certs.ca_cert)
        await pilot.click("#fog-search")
        await wait_until(pilot, lambda: isinstance(host.screen, fog.FogNodesStep), "node list")

        options = host.screen.query_one("#fog-nodes", OptionList)
        async with FogAdvertiser(tls_server.port, name=service_name, interfaces=LOOPBACK):
            # The node appears while the step is shown, then passes its health check.
            await wait_until(
                pilot,
                lambda: options.option_count == 1 and not options.get_option_at_index(0).disabled,
                "the node in the list, checked",
            )
            prompt = str(options.get_option_at_index(0).prompt)
            assert service_name in prompt
            assert f"127.0.0.1:{tls_server.port}" in prompt and "TLS" in prompt
            assert MODEL in prompt and " ms" in prompt
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(host.screen, fog.FogModelStep), "models")
            models = host.screen.query_one("#fog-models", OptionList)
            assert models.get_option_at_index(0).id == MODEL
            await pilot.press("enter")
            await wait_until(pilot, lambda: bool(host.finished), "the end of the flow")

    [settings] = host.finished
    assert (settings.general.backend, settings.general.model) == ("fog", MODEL)
    assert settings.fog.ca_cert == str(node_certs.ca_cert)
    token_file = config_dir() / FOG_TOKEN_FILE
    assert token_file.read_text().strip() == TOKEN
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    # The chat uses what onboarding stored: the CA from the settings, the token file.
    config = fog_config(settings)
    assert config.ca_cert == Path(node_certs.ca_cert)
    assert config.token is not None and await config.token() == TOKEN
    # The token went to the node's health check, never into the settings file.
    assert tls_server.requests and tls_server.requests[0].bearer == TOKEN
    assert TOKEN not in repr(settings.to_dict())


async def test_a_node_with_the_wrong_certificate_is_listed_with_the_fix(
    tls_server: OpenAITestServer, other_certs: NodeCertificates, service_name: str
) -> None:
    settings = settings_for(service_name)
    settings.fog.ca_cert = str(other_certs.ca_cert)
    host = Host(settings)
    async with host.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "enter")
        await type_into(pilot, "#fog-token", TOKEN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(host.screen, fog.FogNodesStep), "node list")
        options = host.screen.query_one("#fog-nodes", OptionList)
        async with FogAdvertiser(tls_server.port, name=service_name, interfaces=LOOPBACK):
            await wait_until(
                pilot,
                lambda: (
                    options.option_count == 1 and "⚠" in str(options.get_option_at_index(0).prompt)
                ),
                "the node with its problem",
            )
            option = options.get_option_at_index(0)
            assert option.disabled
            assert "certificate" in str(option.prompt)
            # In-app advice: the setup's field and config.toml, never a command-line flag.
            assert "CA certificate field" in str(option.prompt)
            assert "--ca-cert" not in str(option.prompt)
            await pilot.press("escape")  # back to fix the CA; nothing typed is lost
            assert isinstance(host.screen, fog.FogAccessStep)
            assert host.screen.query_one("#fog-ca", Input).value == str(other_certs.ca_cert)
    assert host.finished == []
