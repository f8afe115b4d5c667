"""The app's screens, each staged for a picture.

One set of scenes serves the snapshot tests (``tests/snapshots/test_snapshots.py``, at
80x24 and 120x40) and the README's screenshots (``screenshots/make_screenshots.py``, at
100x30), so the two cannot drift apart. After a deliberate change to what a screen shows,
look at the failure report, then regenerate both::

    pytest tests/snapshots --snapshot-update
    python screenshots/make_screenshots.py

A scene is deterministic. It runs the real app with the mock backend or the suite's
loopback servers, which it starts and stops itself; stored conversations have fixed
titles, ids and times (shown in UTC); text cursors do not blink. Facts that change from
one run or machine to the next are pinned: the free RAM next to the on-device models
(16 GiB, CPU-only build), and the fog node's name, port and latency (after checking that
the real node reads the same apart from those). A download is shown as it resumes, before
the first new byte arrives, so that no speed or time left is in view.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar, Static, TextArea

from backends.fog.certs import create_node_certificates
from backends.fog.discovery import FogNode
from backends.local.catalog import find_entry
from backends.local.download_state import DownloadManager
from backends.local.models import HubFile, ModelStore
from backends.runner import Runner
from tests.fog.conftest import TOKEN, server_context
from tests.snapshots.props import (
    StalledHub,
    advertised,
    environment,
    fill_history,
    get_weather,
    pinned_memory,
)
from tests.support.hub_server import SEND_CHUNK
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall
from tests.tui.helpers import wait_until
from tui.app import SpeziChatApp
from tui.onboarding.fog import FogAccessStep, FogNodesStep, node_prompt
from tui.onboarding.local import LocalDownloadStep, StarterModelStep
from tui.onboarding.openai import ApiKeyStep, ModelStep
from tui.onboarding.screens import BackendChoiceStep, WelcomeStep
from tui.screens.chat import ChatScreen
from tui.screens.dialogs import ConfirmDialog, TextDialog, ToolApprovalDialog
from tui.screens.help import HelpScreen
from tui.screens.models import ModelPicker
from tui.screens.search import SearchScreen
from tui.screens.settings import SettingsScreen
from tui.settings import Settings
from tui.store import Store
from tui.widgets.download_panel import DownloadPanel
from tui.widgets.footer import KeyFooter
from tui.widgets.messages import AssistantMessage

SNAPSHOT_SIZES = ((80, 24), (120, 40))
README_SIZE = (100, 30)

DEMO_KEY = "sk-demo-0123456789abcdef"
OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small", "tts-1")
FOG_MODELS = ("llama3.2:3b",)
PINNED_NODE = ("spezillmfog-lab", 8443, 3.0)
"""The fog node's name, port and latency (ms) in the picture."""
DOWNLOAD_ENTRY = "qwen2.5-0.5b"

Drive = Callable[[Pilot[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Staged:
    """An app ready to run, and what brings it to the scene's screen (``run_before``)."""

    app: App[Any]
    drive: Drive


@dataclass(frozen=True)
class Scene:
    name: str
    stage: Callable[[Path], AbstractContextManager[Staged]]
    """Sets the scene up in an empty directory, for as long as the context lasts."""
    readme: bool = False
    """One of the README's screenshots too (``screenshots/NAME.svg``)."""


def shoot(scene: Scene, size: tuple[int, int], base: Path) -> str:
    """The scene as an SVG, taken the way pytest-textual-snapshot's ``snap_compare`` does."""
    with scene.stage(base) as staged:

        async def auto_pilot(pilot: Pilot[Any]) -> None:
            await staged.drive(pilot)
            await pilot.pause()
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            await pilot.pause()
            await pilot.wait_for_scheduled_animations()
            pilot.app.exit(pilot.app.export_screenshot(title=pilot.app.title))

        return cast(str, staged.app.run(headless=True, size=size, auto_pilot=auto_pilot))


# Driving ----------------------------------------------------------------------------------
async def settle(pilot: Pilot[Any]) -> None:
    """Stop the text cursors blinking (a picture would catch them on or off), then draw."""
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False
    await pilot.pause()


async def on_screen(pilot: Pilot[Any], kind: type[Any], what: str) -> Any:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, kind), what)
    return app.screen


async def choose_backend(pilot: Pilot[Any], branch_id: str) -> None:
    """From the welcome step, through the backend choice, into one branch."""
    await on_screen(pilot, WelcomeStep, "the welcome step")
    await pilot.press("enter")
    step = await on_screen(pilot, BackendChoiceStep, "the backend choice")
    options = step.query_one(OptionList)
    options.highlighted = options.get_option_index(branch_id)
    await pilot.press("enter")


async def chat_ready(pilot: Pilot[Any], conversation_id: str) -> ChatScreen:
    """The chat screen with ``conversation_id`` open, its reply drawn, its key hints shown."""
    screen = cast(ChatScreen, await on_screen(pilot, ChatScreen, "the chat"))

    def drawn() -> bool:
        replies = list(screen.log_view.query(AssistantMessage))
        return (
            screen.conversation is not None
            and screen.conversation.id == conversation_id
            and bool(replies)
            and all(s.built for reply in replies for s in reply.body.segments)
            and bool(screen.query(KeyFooter))
        )

    await wait_until(pilot, drawn, "the conversation drawn, with the key hints")
    return screen


# Scenes -----------------------------------------------------------------------------------
@contextmanager
def _onboarding(base: Path, **env: str | None) -> Iterator[tuple[ExitStack, SpeziChatApp]]:
    """A first start: no settings yet, so the app opens on the welcome step."""
    with ExitStack() as stack:
        stack.enter_context(environment(**env))
        settings = Settings()
        settings.local.models_dir = str(base / "models")
        store = stack.enter_context(Store(base / "history.db"))
        yield stack, SpeziChatApp(settings=settings, store=store, runner=Runner())


@contextmanager
def welcome(base: Path) -> Iterator[Staged]:
    with _onboarding(base) as (_, app):

        async def drive(pilot: Pilot[Any]) -> None:
            await on_screen(pilot, WelcomeStep, "the welcome step")
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def backend_choice(base: Path) -> Iterator[Staged]:
    with _onboarding(base) as (_, app):

        async def drive(pilot: Pilot[Any]) -> None:
            await on_screen(pilot, WelcomeStep, "the welcome step")
            await pilot.press("enter")
            await on_screen(pilot, BackendChoiceStep, "the backend choice")
            await settle(pilot)

        yield Staged(app, drive)


async def _type_key(pilot: Pilot[Any]) -> None:
    await choose_backend(pilot, "openai")
    step = await on_screen(pilot, ApiKeyStep, "the key step")
    await pilot.press(*DEMO_KEY)
    field = step.query_one("#api-key", Input)
    await wait_until(pilot, lambda: field.value == DEMO_KEY, "the key typed")


@contextmanager
def api_key(base: Path) -> Iterator[Staged]:
    # OpenAI's own address in the hint: nothing is sent before Enter.
    with _onboarding(base, OPENAI_BASE_URL=None, OPENAI_API_KEY=None) as (_, app):

        async def drive(pilot: Pilot[Any]) -> None:
            await _type_key(pilot)
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def model_choice(base: Path) -> Iterator[Staged]:
    with OpenAITestServer(api_key=DEMO_KEY, models=OPENAI_MODELS) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": None}
        with _onboarding(base, **env) as (_, app):

            async def drive(pilot: Pilot[Any]) -> None:
                await _type_key(pilot)
                await pilot.press("enter")
                step = await on_screen(pilot, ModelStep, "the model step")
                step.query_one("#models", OptionList)
                await settle(pilot)

            yield Staged(app, drive)


@contextmanager
def local_models(base: Path) -> Iterator[Staged]:
    with pinned_memory(), _onboarding(base) as (_, app):

        async def drive(pilot: Pilot[Any]) -> None:
            await choose_backend(pilot, "local")
            step = await on_screen(pilot, StarterModelStep, "the on-device models")
            hints = step.query_one("#memory", Static)
            await wait_until(pilot, lambda: "RAM" in str(hints.render()), "the memory hints")
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def download(base: Path) -> Iterator[Staged]:
    entry = find_entry(DOWNLOAD_ENTRY)
    assert entry is not None
    hub_file = HubFile(entry.repo, entry.file)
    # An earlier, interrupted download left half of the file: exactly half, as Textual's
    # bar rounds its fill to the width it has when the value arrives (before or after its
    # first layout), and a half comes out the same either way. The size is made even.
    size = entry.size_bytes + entry.size_bytes % 2
    kept = size // 2
    managers: list[DownloadManager] = []
    hub = StalledHub()
    with hub, _onboarding(base) as (stack, app):
        # Served: two chunks of zeros, announced at the (even) catalog size.
        hub.add_file(entry.repo, entry.file, bytes(2 * SEND_CHUNK), advertised_size=size)
        stack.enter_context(environment(HF_ENDPOINT=hub.url))
        # An earlier download, cut off: the real downloader keeps the first chunk and its
        # record of the file's version; the zeros after it stand for the rest of the half.
        models = ModelStore(base / "models")
        hub.drop_after = SEND_CHUNK
        earlier = DownloadManager(hub_file, models)
        earlier.start()
        earlier.wait(60)
        partial = models.partial_path(models.path_for(hub_file))
        assert partial.stat().st_size == SEND_CHUNK, "the earlier download kept no part"
        os.truncate(partial, kept)
        hub.stalled = True

        def release() -> None:
            hub.release.set()
            for manager in managers:
                manager.wait(60)

        stack.callback(release)

        async def drive(pilot: Pilot[Any]) -> None:
            await choose_backend(pilot, "local")
            step = await on_screen(pilot, StarterModelStep, "the on-device models")
            catalog = step.query_one("#catalog", OptionList)
            catalog.focus()
            catalog.highlighted = catalog.get_option_index(entry.id)
            await pilot.press("enter")
            step = await on_screen(pilot, LocalDownloadStep, "the download")
            panel = step.query_one(DownloadPanel)
            managers.append(panel.manager)
            bar = step.query_one("#download-bar", ProgressBar)
            status = step.query_one("#download-status", Static)
            await wait_until(
                pilot,
                lambda: bar.progress == kept and " of " in str(status.render()),
                "the download resuming",
            )
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def fog_discovery(base: Path) -> Iterator[Staged]:
    name = f"spezillmfog-{uuid.uuid4().hex[:10]}"  # no other node on this machine is listed
    certs = create_node_certificates(base / "fog-node")
    context = server_context(certs)
    with (
        OpenAITestServer(api_key=TOKEN, models=FOG_MODELS, ssl_context=context) as node,
        advertised(node.port, name),
        _onboarding(base) as (_, app),
    ):
        app.settings.fog.service_names = [name]
        app.settings.fog.interfaces = ["127.0.0.1"]

        async def drive(pilot: Pilot[Any]) -> None:
            await choose_backend(pilot, "fog")
            access = await on_screen(pilot, FogAccessStep, "the fog access step")
            access.query_one("#fog-ca", Input).value = str(certs.ca_cert)
            token = access.query_one("#fog-token", Input)
            token.focus()
            token.insert_text_at_cursor(TOKEN)
            await pilot.press("enter")
            step = await on_screen(pilot, FogNodesStep, "the node list")
            options = step.query_one("#fog-nodes", OptionList)

            def checked() -> bool:
                if options.option_count != 1:
                    return False
                option = options.get_option_at_index(0)
                return not option.disabled and " ms" in str(option.prompt)

            await wait_until(pilot, checked, "the node in the list, checked")
            step.workers.cancel_group(step, "fog-browse")  # the list stops changing
            browsing = [w for w in step.workers if w.group == "fog-browse"]
            await wait_until(
                pilot, lambda: all(w.is_finished for w in browsing), "the search stopped"
            )
            _pin_node(options, name, node.port)
            await settle(pilot)

        yield Staged(app, drive)


def _pin_node(options: OptionList, name: str, port: int) -> None:
    """Show the listed node with :data:`PINNED_NODE`'s name, port and latency, after
    checking that it reads the same apart from those."""
    option = options.get_option_at_index(0)
    assert option.id is not None
    pinned_name, pinned_port, latency = PINNED_NODE
    pinned = FogNode(
        key=option.id,
        name=pinned_name,
        host="spezillmfog.local",
        addresses=("127.0.0.1",),
        port=pinned_port,
        tls=True,
        status="ok",
        url=f"https://127.0.0.1:{pinned_port}",
        models=FOG_MODELS,
        latency_ms=latency,
    )
    shown = str(option.prompt).replace(name, pinned_name).replace(f":{port}", f":{pinned_port}")
    shown = re.sub(r"\d+ ms$", f"{latency:.0f} ms", shown)
    prompt = node_prompt(pinned)
    assert str(prompt) == shown, f"the node reads {shown!r}, the pinned one {str(prompt)!r}"
    options.replace_option_prompt(option.id, prompt)


@contextmanager
def _chat(
    base: Path, settings: Settings, *, server: OpenAITestServer | None = None, **kwargs: Any
) -> Iterator[tuple[SpeziChatApp, str]]:
    """The app on the chat screen with :data:`CONVERSATIONS` stored; the latest opens."""
    env: dict[str, str | None] = {"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None}
    if server is not None:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": DEMO_KEY}
    with environment(**env), Store(base / "history.db") as store:
        latest = fill_history(store, settings)
        yield SpeziChatApp(settings=settings, store=store, runner=Runner(), **kwargs), latest


def _mock_settings() -> Settings:
    settings = Settings()
    settings.general.backend = "mock"
    settings.general.model = "mock"
    return settings


def _openai_settings() -> Settings:
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = "gpt-4o-mini"
    return settings


def _chat_scene(keys: tuple[str, ...], screen: type[Any], what: str) -> Callable[[Path], Any]:
    """A scene on the chat screen: press ``keys``, then wait for ``screen``."""

    @contextmanager
    def stage(base: Path) -> Iterator[Staged]:
        with _chat(base, _mock_settings()) as (app, latest):

            async def drive(pilot: Pilot[Any]) -> None:
                await chat_ready(pilot, latest)
                await pilot.press(*keys)
                await on_screen(pilot, screen, what)
                await settle(pilot)

            yield Staged(app, drive)

    return stage


chat = _chat_scene((), ChatScreen, "the chat")
help_screen = _chat_scene(("f1",), HelpScreen, "the help")
settings_screen = _chat_scene(("f2",), SettingsScreen, "the settings")
delete_dialog = _chat_scene(("ctrl+l", "d"), ConfirmDialog, "the question")
rename_dialog = _chat_scene(("ctrl+l", "r"), TextDialog, "the rename dialog")


@contextmanager
def search(base: Path) -> Iterator[Staged]:
    with _chat(base, _mock_settings()) as (app, latest):

        async def drive(pilot: Pilot[Any]) -> None:
            await chat_ready(pilot, latest)
            await pilot.press("ctrl+f")
            screen = await on_screen(pilot, SearchScreen, "the search")
            await pilot.press(*"fog")
            hits = screen.query_one(OptionList)
            await wait_until(pilot, lambda: hits.option_count == 2, "the search results")
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def model_picker(base: Path) -> Iterator[Staged]:
    with (
        OpenAITestServer(api_key=DEMO_KEY, models=OPENAI_MODELS) as server,
        _chat(base, _openai_settings(), server=server) as (app, latest),
    ):

        async def drive(pilot: Pilot[Any]) -> None:
            await chat_ready(pilot, latest)
            await pilot.press("f3")
            picker = await on_screen(pilot, ModelPicker, "the model picker")
            info = picker.query_one("#model-info", Static)
            await wait_until(pilot, lambda: "models ·" in str(info.render()), "the model list")
            await settle(pilot)

        yield Staged(app, drive)


@contextmanager
def tool_approval(base: Path) -> Iterator[Staged]:
    settings = _openai_settings()
    settings.ui.show_sidebar = False  # the new conversation's time is not in view
    with OpenAITestServer(api_key=DEMO_KEY, models=OPENAI_MODELS) as server:
        server.script(Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Lisbon"})]))
        with _chat(base, settings, server=server, tools=(get_weather,)) as (app, latest):

            async def drive(pilot: Pilot[Any]) -> None:
                await chat_ready(pilot, latest)
                await pilot.press("ctrl+n", *"Is it sunny in Lisbon?", "enter")
                dialog = await on_screen(pilot, ToolApprovalDialog, "the approval dialog")
                hint = dialog.query_one("#approval-hint", Static)
                await wait_until(
                    pilot,
                    lambda: dialog.answerable and "y runs it" in str(hint.render()),
                    "the dialog taking answers",
                )
                await settle(pilot)

            yield Staged(app, drive)


SCENES: tuple[Scene, ...] = (
    Scene("welcome", welcome, readme=True),
    Scene("backend-choice", backend_choice, readme=True),
    Scene("api-key", api_key, readme=True),
    Scene("model-choice", model_choice, readme=True),
    Scene("local-models", local_models, readme=True),
    Scene("download", download, readme=True),
    Scene("fog-discovery", fog_discovery, readme=True),
    Scene("chat", chat, readme=True),
    Scene("help", help_screen),
    Scene("settings", settings_screen),
    Scene("search", search),
    Scene("model-picker", model_picker),
    Scene("delete-dialog", delete_dialog),
    Scene("rename-dialog", rename_dialog),
    Scene("tool-approval", tool_approval),
)
