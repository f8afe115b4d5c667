"""Onboarding branch "on-device model": pick a model, download it, set the GPU offload.

1. :class:`StarterModelStep`: the offline starter (bundled, no download) or a catalog
   model, each with its size and a hint whether it fits this machine's free RAM (and
   VRAM with a GPU build).
2. :class:`LocalDownloadStep`: the download with a progress bar, cancel and resume.
   Skipped when the model is already here.
3. :class:`OffloadStep`: how many layers go to the GPU. Only with a GPU build of
   llama-cpp-python; a CPU-only build finishes after the model is ready.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.onboarding.flow import Branch, OnboardingStep, branch_of
from tui.widgets.download_panel import DownloadPanel, entry_label

CHOICE = "local.entry"
"""State key: the id of the chosen catalog model."""
GPU = "local.gpu_build"
"""State key: whether llama-cpp-python can offload to a GPU here."""


def _store(step: OnboardingStep) -> Any:
    from backends.local.models import ModelStore

    return ModelStore(step.state.settings.local.models_dir or None)


def _gpu_build(step: OnboardingStep) -> bool:
    if GPU not in step.state.values:
        from backends.local.platform import gpu_offload_supported

        step.state.values[GPU] = gpu_offload_supported()
    return bool(step.state.values[GPU])


def _after_model_ready(step: OnboardingStep, skip: int) -> None:
    """Go on once the model is on disk: to the offload step, or finish on a CPU build."""
    if _gpu_build(step):
        for _ in range(skip + 1):
            step.flow.advance()
    else:
        step.flow.finish()


class StarterModelStep(OnboardingStep):
    """The bundled starter model, or a catalog model to download."""

    TITLE = "On-device model"
    INTRO = (
        "The model runs on this computer with llama.cpp: nothing leaves your machine and "
        "no network is needed once it is here."
    )

    def compose_step(self) -> ComposeResult:
        from backends.local.catalog import load_catalog, starter_entry

        entry = starter_entry()
        yield Static(
            Content.assemble(
                (entry.name, "bold"),
                f"  ·  {entry.params} parameters · {entry.quant} · bundled\n",
                entry.description,
                ("\nLicense: " + entry.license, "dim"),
            ),
            id="starter",
        )
        yield Button("Use the offline starter model", id="use-starter", variant="primary")
        yield Static("Or download an instruction-tuned model:", id="memory")
        yield OptionList(
            *(Option(Content(entry_label(e)), id=e.id) for e in load_catalog() if not e.is_package),
            id="catalog",
        )

    def on_mount(self) -> None:
        self.query_one("#use-starter", Button).focus()
        self.probe_memory()

    @work(thread=True, exclusive=True, group="local-memory")
    def probe_memory(self) -> None:
        from backends.local.hardware import Memory, fit_hint

        memory = Memory.probe()
        store = _store(self)
        present = {m.entry.id for m in store.installed() if m.entry is not None}
        self.state.values[GPU] = memory.gpu_build
        from backends.local.catalog import load_catalog

        rows = []
        for entry in load_catalog():
            if entry.is_package:
                continue
            level, hint = fit_hint(entry, memory)
            style = {"fits": "green", "tight": "yellow", "too big": "red"}.get(level, "dim")
            mark = ("  ✓ downloaded", "bold") if entry.id in present else ""
            rows.append(
                Option(
                    Content.assemble(entry_label(entry), "\n  ", (hint, style), mark),
                    id=entry.id,
                )
            )
        self.app.call_from_thread(self._show_fit, memory.describe(), rows)

    def _show_fit(self, memory: str, rows: list[Option]) -> None:
        self.query_one("#memory", Static).update(
            Content(f"Or download an instruction-tuned model ({memory}):")
        )
        catalog = self.query_one("#catalog", OptionList)
        highlighted = catalog.highlighted
        catalog.clear_options()
        catalog.add_options(rows)
        catalog.highlighted = highlighted

    @on(Button.Pressed, "#use-starter")
    def use_starter(self) -> None:
        from backends.local.catalog import starter_entry

        self._choose(starter_entry().id)

    @on(OptionList.OptionSelected, "#catalog")
    def use_catalog(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._choose(event.option.id)

    def _choose(self, entry_id: str) -> None:
        from backends.local.catalog import find_entry
        from backends.local.errors import ModelNotFoundError

        entry = find_entry(entry_id)
        assert entry is not None
        self.state.values[CHOICE] = entry.id
        general = self.state.settings.general
        store = _store(self)
        try:
            store.resolve(entry.id)
        except ModelNotFoundError:
            # Not here yet: the download step sets the model once the file is complete.
            general.backend, general.model = "", ""
            self.flow.advance()
            return
        general.backend, general.model = "local", entry.id
        _after_model_ready(self, skip=1)


class LocalDownloadStep(OnboardingStep):
    """Download the chosen model, with progress, cancel and resume."""

    TITLE = "Download the model"
    INTRO = (
        "The file comes from the Hugging Face hub and is checked against the hub's "
        "SHA-256. Cancel keeps what arrived; Resume (now or after a restart) continues."
    )

    def compose_step(self) -> ComposeResult:
        from backends.local.catalog import find_entry
        from backends.local.models import HubFile

        entry = find_entry(self.state.values.get(CHOICE, ""))
        if (
            entry is None
            or entry.is_package
            or _store(self).path_for(HubFile(entry.repo, entry.file)).is_file()
        ):
            yield Static("The model is already on this computer.", id="download-model")
            yield Button("Continue", id="download-continue", variant="primary")
            return
        self.entry = entry
        yield Static(Content.assemble((entry.name, "bold"), "\n", entry_label(entry)))
        yield DownloadPanel(
            HubFile(entry.repo, entry.file), _store(self), autostart=True, id="download"
        )
        yield Button("Continue", id="download-continue", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#download-continue", Button).display = not self.query("#download")

    @on(DownloadPanel.Finished)
    def _done(self) -> None:
        general = self.state.settings.general
        general.backend, general.model = "local", self.entry.id
        button = self.query_one("#download-continue", Button)
        button.display = True
        button.focus()

    @on(Button.Pressed, "#download-continue")
    def _continue(self) -> None:
        if not self.state.settings.general.model:
            from backends.local.catalog import starter_entry

            general = self.state.settings.general
            general.backend, general.model = "local", starter_entry().id
        _after_model_ready(self, skip=0)

    def action_back(self) -> None:
        for panel in self.query(DownloadPanel):
            panel.cancel()
        super().action_back()


class OffloadStep(OnboardingStep):
    """How many layers llama.cpp offloads to the GPU."""

    TITLE = "GPU offload"
    INTRO = (
        "This llama-cpp-python build can run the model on the GPU. Offloading every layer "
        "is fastest when the model fits the GPU's memory; otherwise offload part of it."
    )

    def compose_step(self) -> ComposeResult:
        yield Static("", id="vram")
        yield OptionList(
            Option("All layers on the GPU (fastest)", id="all"),
            Option("CPU only (no offload)", id="none"),
            Option("A number of layers…", id="some"),
            id="offload",
        )
        yield Input(placeholder="layers, for example 20", id="layers", type="integer")
        yield Static("", id="offload-status")

    def on_mount(self) -> None:
        self.query_one("#layers", Input).display = False
        self.query_one("#offload", OptionList).focus()
        self._show_vram()

    @work(thread=True, group="local-vram")
    def _show_vram(self) -> None:
        from backends.local.catalog import human_size
        from backends.local.hardware import free_vram

        vram = free_vram()
        text = f"{human_size(vram)} of GPU memory free." if vram else "GPU memory: unknown."
        self.app.call_from_thread(self.query_one("#vram", Static).update, Content(text))

    @on(OptionList.OptionSelected, "#offload")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "some":
            layers = self.query_one("#layers", Input)
            layers.display = True
            layers.focus()
            return
        self._use(-1 if event.option.id == "all" else 0)

    @on(Input.Submitted, "#layers")
    def _typed(self, event: Input.Submitted) -> None:
        try:
            layers = int(event.value)
        except ValueError:
            layers = -2
        if layers < 0:
            self.query_one("#offload-status", Static).update(
                Content("⚠ Type a whole number of layers (0 or more).")
            )
            return
        self._use(layers)

    def _use(self, layers: int) -> None:
        self.state.settings.local.n_gpu_layers = layers
        self.flow.advance()


def branch() -> Branch:
    """This backend's onboarding as registered (label, summary, steps: tui.backends.local)."""
    from tui.backends import REGISTRY

    return branch_of(REGISTRY["local"])
