"""Onboarding branch "fog node": a server on your local network.

This first version asks for the model to use and, optionally, the root CA certificate of
the node; nodes are found over mDNS when the chat starts. The fog engineer replaces the
steps with the live list of discovered nodes, CA and token entry and the node's model
list (see :mod:`tui.onboarding` for the hook).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Input, Label, Static

from tui.onboarding.flow import Branch, OnboardingStep, backend_missing


class FogNodeStep(OnboardingStep):
    """The model to ask the node for, and the CA that signed its certificate."""

    TITLE = "Fog node"
    INTRO = (
        "A fog node is an OpenAI-compatible server on your network (Ollama, llama.cpp "
        "server, vLLM) that spezichat finds over mDNS and reaches over TLS signed by the "
        "node's own root certificate authority."
    )

    def compose_step(self) -> ComposeResult:
        fog = self.state.settings.fog
        yield Label("Model on the node")
        yield Input(
            self.state.settings.general.model if self.state.backend == "fog" else "",
            placeholder="llama3.2",
            id="fog-model",
        )
        yield Label("Root CA certificate (PEM file; empty for plain HTTP on loopback)")
        yield Input(fog.ca_cert, placeholder="~/fog/ca.crt", id="fog-ca")
        yield Static("", id="fog-status")
        yield Button("Continue", id="fog-continue", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#fog-model", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#fog-continue")
    def submit(self) -> None:
        from pathlib import Path

        model = self.query_one("#fog-model", Input).value.strip()
        ca = self.query_one("#fog-ca", Input).value.strip()
        status = self.query_one("#fog-status", Static)
        if not model:
            status.update(Content("⚠ Type the name of a model the node serves."))
            return
        if ca and not Path(ca).expanduser().is_file():
            status.update(Content(f"⚠ {ca} is not a file. Give the path of the node's ca.crt."))
            return
        settings = self.state.settings
        settings.general.backend = "fog"
        settings.general.model = model
        settings.fog.ca_cert = str(Path(ca).expanduser()) if ca else ""
        self.flow.advance()


def branch() -> Branch:
    return Branch(
        id="fog",
        title="Fog node on this network",
        summary="A server on your local network, found automatically; data stays on your LAN.",
        steps=(FogNodeStep,),
        unavailable=lambda: backend_missing("fog", "zeroconf"),
    )
