"""The on-device model manager: the catalog and the models on disk, with their state.

Enter uses the highlighted model for new replies (switching to the local backend), ``d``
downloads it or resumes an unfinished download, ``x`` stops a download, ``Delete``
removes the file after asking. Opened from the command palette ("On-device models").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from backends.errors import LLMError
from backends.local.catalog import CatalogEntry, human_size, load_catalog
from backends.local.models import HubFile, ModelStore, parse_spec
from backends.untrusted import one_line, printable
from tui.advice import advice_in
from tui.widgets.download_panel import DownloadPanel, entry_label

if TYPE_CHECKING:
    from tui.app import SpeziChatApp


def open_local_models(app: Any) -> None:
    """Show the manager (the command palette's "On-device models")."""
    app.push_screen(LocalModelsScreen())


class LocalModelsScreen(ModalScreen[str | None]):
    """Catalog and downloaded models; download, resume, delete, use."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="local_models.close"),
        Binding("d", "download", "Download/resume", id="local_models.download"),
        Binding("x", "stop", "Stop download", id="local_models.stop"),
        Binding("delete", "delete", "Delete", id="local_models.delete"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    LocalModelsScreen { align: center middle; }
    LocalModelsScreen > Vertical {
        width: 100%; max-width: 96; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    LocalModelsScreen #local-title { text-style: bold; color: $primary; }
    LocalModelsScreen #local-list { height: auto; max-height: 14; }
    LocalModelsScreen #local-info { color: $text-muted; height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.panel: DownloadPanel | None = None

    @property
    def chat_app(self) -> SpeziChatApp:
        return cast("SpeziChatApp", self.app)

    @property
    def store(self) -> ModelStore:
        return ModelStore(self.chat_app.settings.local.models_dir or None)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("On-device models", id="local-title")
            yield Static("Checking this machine's memory…", id="local-memory")
            yield OptionList(id="local-list")
            yield Static(
                "Enter: use · d: download or resume · x: stop · Delete: delete · Esc: close",
                id="local-info",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#local-list", OptionList).focus()
        self.refresh_list()

    # The list ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="local-models")
    def refresh_list(self) -> None:
        from backends.local.hardware import Memory, fit_hint

        memory = Memory.probe()
        store = self.store
        installed = store.installed()
        present = {m.entry.id for m in installed if m.entry is not None}
        current = self.chat_app.settings.general
        rows: list[Option] = []
        for entry in load_catalog():
            rows.append(self._row(entry, entry.id in present, fit_hint(entry, memory)[1], store))
        for model in installed:
            if model.entry is None:
                text = Content.assemble(
                    (one_line(model.name), "bold"),
                    f" · {human_size(model.size)}",
                    (" · downloaded", "green"),
                )
                rows.append(Option(text, id=model.name))
        in_use = current.model if current.backend == "local" else ""
        self.app.call_from_thread(self._show, memory.describe(), rows, in_use)

    def _row(self, entry: CatalogEntry, present: bool, hint: str, store: ModelStore) -> Option:
        if entry.is_package:
            state: tuple[str, str] = ("bundled", "green")
        elif present:
            state = ("downloaded", "green")
        else:
            partial = store.partial_path(store.path_for(HubFile(entry.repo, entry.file)))
            if partial.is_file():
                state = (f"partial: {human_size(partial.stat().st_size)}", "yellow")
            else:
                state = ("not downloaded", "dim")
        text = Content.assemble(
            (entry.id, "bold"),
            " · ",
            (state[0], state[1]),
            "\n  ",
            entry_label(entry),
            "\n  ",
            (hint, "dim"),
        )
        return Option(text, id=entry.id)

    def _show(self, memory: str, rows: list[Option], in_use: str) -> None:
        self.query_one("#local-memory", Static).update(Content(memory))
        view = self.query_one("#local-list", OptionList)
        highlighted = view.highlighted
        view.clear_options()
        view.add_options(rows)
        ids = [row.id for row in rows]
        if highlighted is not None and highlighted < len(rows):
            view.highlighted = highlighted
        elif in_use in ids:
            view.highlighted = ids.index(in_use)
        else:
            view.highlighted = 0

    def _highlighted(self) -> str | None:
        view = self.query_one("#local-list", OptionList)
        if view.highlighted is None:
            return None
        return view.get_option_at_index(view.highlighted).id

    def _say(self, text: str) -> None:
        self.query_one("#local-info", Static).update(Content(printable(text)))

    # Actions ----------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#local-list")
    def _use(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if not name:
            return
        from backends.local.errors import ModelNotFoundError

        try:
            self.store.resolve(name)
        except ModelNotFoundError as error:
            self._say(f"⚠ {error.reason} Press d to download it.")
            return
        except LLMError as error:
            self._say(f"⚠ {error.reason} {advice_in(self.app, error)}")
            return
        settings = self.chat_app.settings
        settings.general.backend = "local"
        self.chat_app.set_model(name)
        self.dismiss(name)

    def action_download(self) -> None:
        name = self._highlighted()
        if name is None or (self.panel is not None and self.panel.running):
            return
        spec = parse_spec(name)
        hub = spec.hub_file
        if hub is None:
            self._say("This model needs no download.")
            return
        if self.panel is not None:
            self.panel.remove()
        self.panel = DownloadPanel(hub, self.store, autostart=True, id="local-download")
        self.query_one(Vertical).mount(self.panel, before="#local-info")

    def action_stop(self) -> None:
        if self.panel is not None:
            self.panel.cancel()

    @on(DownloadPanel.Finished)
    @on(DownloadPanel.Stopped)
    def _download_ended(self) -> None:
        self.refresh_list()
        self.query_one("#local-list", OptionList).focus()

    def action_delete(self) -> None:
        from tui.screens.dialogs import ConfirmDialog

        name = self._highlighted()
        if name is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                removed = self.store.delete(name)
            except LLMError as error:
                self._say(f"⚠ {error.description} {error.reason}")
                return
            self._say(f"Deleted {name} ({', '.join(path.name for path in removed)}).")
            self.refresh_list()

        self.app.push_screen(
            ConfirmDialog(f"Delete {name}?", "The file is removed from this computer."),
            confirmed,
        )

    def action_close(self) -> None:
        if self.panel is not None:
            self.panel.cancel()
        self.dismiss(None)
