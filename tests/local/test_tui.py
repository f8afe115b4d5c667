"""The on-device onboarding branch and the model manager, driven with Textual's pilot;
downloads come from the loopback hub."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, OptionList, Static

from backends.local.catalog import find_entry
from backends.local.models import HubFile, ModelStore
from backends.runner import Runner
from tests.local.test_download import payload
from tests.support.hub_server import HubServer
from tests.tui.helpers import wait_until
from tui.app import SpeziChatApp
from tui.onboarding.local import LocalDownloadStep, StarterModelStep
from tui.screens.chat import ChatScreen
from tui.screens.local_models import LocalModelsScreen
from tui.settings import Settings
from tui.store import Store

SIZE = (80, 24)
MB = 1024 * 1024


@pytest.fixture
def app_store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "history.db") as store:
        yield store


@pytest.fixture
def make_app(app_store: Store) -> Callable[[Settings], SpeziChatApp]:
    def make(settings: Settings) -> SpeziChatApp:
        return SpeziChatApp(settings=settings, store=app_store, runner=Runner())

    return make


@pytest.fixture
def qwen(hub: HubServer) -> tuple[HubFile, bytes]:
    """The catalog's Qwen2.5 0.5B entry, served (as test bytes) by the loopback hub."""
    entry = find_entry("qwen2.5-0.5b")
    assert entry is not None
    data = payload(3 * MB, seed=9)
    hub.add_file(entry.repo, entry.file, data)
    return HubFile(entry.repo, entry.file), data


async def to_local_branch(pilot: Pilot[Any]) -> StarterModelStep:
    await pilot.press("enter")  # welcome
    options = pilot.app.screen.query_one(OptionList)
    local = options.get_option_index("local")
    options.highlighted = local
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, StarterModelStep)
    return screen


def status(screen: Any) -> str:
    return str(screen.query_one("#download-status", Static).render())


async def test_onboarding_downloads_a_catalog_model_then_opens_the_chat(
    make_app: Callable[[Settings], SpeziChatApp], qwen: tuple[HubFile, bytes]
) -> None:
    hub_file, data = qwen
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        step = await to_local_branch(pilot)
        catalog = step.query_one("#catalog", OptionList)
        # The fit hints arrive from a worker: wait until the rows say how much RAM is free.
        await wait_until(pilot, lambda: "RAM" in str(step.query_one("#memory").render()), "hints")
        catalog.focus()
        catalog.highlighted = catalog.get_option_index("qwen2.5-0.5b")
        await pilot.press("enter")
        assert isinstance(app.screen, LocalDownloadStep)
        await wait_until(pilot, lambda: "SHA-256 verified" in status(app.screen), "the download")
        await pilot.click("#download-continue")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
    saved = Settings.load()
    assert (saved.general.backend, saved.general.model) == ("local", "qwen2.5-0.5b")
    assert ModelStore().path_for(hub_file).read_bytes() == data


async def test_onboarding_download_cancel_and_resume(
    make_app: Callable[[Settings], SpeziChatApp], qwen: tuple[HubFile, bytes], hub: HubServer
) -> None:
    hub_file, _ = qwen
    data = payload(8 * MB, seed=10)
    hub.add_file(hub_file.repo_id, hub_file.filename, data)
    hub.chunk_delay = 0.02  # about 3 MB/s: the Cancel click lands mid-transfer
    store = ModelStore()
    partial = store.partial_path(store.path_for(hub_file))
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        step = await to_local_branch(pilot)
        catalog = step.query_one("#catalog", OptionList)
        catalog.focus()
        catalog.highlighted = catalog.get_option_index("qwen2.5-0.5b")
        await pilot.press("enter")
        download = app.screen
        await wait_until(
            pilot, lambda: partial.exists() and partial.stat().st_size >= MB, "some bytes"
        )
        await pilot.click("#download-cancel")
        await wait_until(pilot, lambda: "Stopped" in status(download), "the stop")
        kept = partial.stat().st_size
        assert kept < len(data) and "kept" in status(download)
        assert download.query_one("#download-resume", Button).display

        hub.chunk_delay = 0
        await pilot.click("#download-resume")
        await wait_until(pilot, lambda: "SHA-256 verified" in status(download), "the end")
        assert "resumed at" in status(download)
    assert hub.cdn_requests()[-1].range == f"bytes={kept}-"
    assert store.path_for(hub_file).read_bytes() == data


async def test_onboarding_download_error_is_shown_and_the_app_keeps_running(
    make_app: Callable[[Settings], SpeziChatApp], hub: HubServer
) -> None:
    entry = find_entry("llama3.2-1b")
    assert entry is not None
    hub.add_file(entry.repo, entry.file, payload(1000), gated=True)
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        step = await to_local_branch(pilot)
        catalog = step.query_one("#catalog", OptionList)
        catalog.focus()
        catalog.highlighted = catalog.get_option_index("llama3.2-1b")
        await pilot.press("enter")
        download = app.screen
        await wait_until(pilot, lambda: "restricted" in status(download), "the error")
        assert "HF_TOKEN" in status(download)
        assert str(download.query_one("#download-resume", Button).label) == "Retry"
        await pilot.press("escape")  # back to the choice; nothing was saved
        assert isinstance(app.screen, StarterModelStep)
    assert not Settings.load().onboarded


async def test_model_manager_downloads_uses_and_deletes(
    make_app: Callable[[Settings], SpeziChatApp], qwen: tuple[HubFile, bytes]
) -> None:
    hub_file, _data = qwen
    settings = Settings()
    settings.general.backend, settings.general.model = "mock", "mock"
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        app.action_local_models()
        await wait_until(pilot, lambda: app.screen.query("#local-list"), "the manager")
        manager = app.screen
        assert isinstance(manager, LocalModelsScreen)
        view = manager.query_one("#local-list", OptionList)
        await wait_until(pilot, lambda: view.option_count > 5, "the list")
        first = str(view.get_option_at_index(0).prompt)
        assert "gemma3-270m-starter" in first and "bundled" in first

        view.highlighted = view.get_option_index("qwen2.5-0.5b")
        await pilot.press("enter")  # not downloaded yet: says how to get it
        info = manager.query_one("#local-info", Static)
        assert "Press d to download" in str(info.render())

        await pilot.press("d")
        await wait_until(
            pilot,
            lambda: "downloaded" in str(view.get_option_at_index(view.highlighted or 0).prompt),
            "the download",
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "back to chat")
        assert (app.settings.general.backend, app.settings.general.model) == (
            "local",
            "qwen2.5-0.5b",
        )

        app.action_local_models()
        await wait_until(pilot, lambda: app.screen.query("#local-list"), "the manager")
        manager = app.screen
        assert isinstance(manager, LocalModelsScreen)
        view = manager.query_one("#local-list", OptionList)
        await wait_until(pilot, lambda: view.option_count > 5, "the list")
        view.highlighted = view.get_option_index("qwen2.5-0.5b")
        await pilot.press("delete")
        await pilot.press("y")
        await wait_until(pilot, lambda: not ModelStore().path_for(hub_file).exists(), "delete")
    assert Settings.load().general.model == "qwen2.5-0.5b"


@pytest.mark.slow
async def test_an_engine_crash_mid_reply_is_shown_saved_and_the_chat_goes_on(
    make_app: Callable[[Settings], SpeziChatApp], app_store: Store, gemma_path: Path
) -> None:
    import os
    import signal

    from backends.context import Role
    from backends.local.platform import LocalPlatform
    from tests.tui.helpers import chat, type_text
    from tui.widgets.messages import AssistantMessage, ErrorItem

    settings = Settings()
    settings.general.backend = "local"
    settings.general.model = str(gemma_path)
    settings.general.max_tokens = 400
    settings.general.temperature = 0.0  # this prompt then runs to the token limit
    settings.local.chat_format = "gemma"
    settings.local.n_ctx = 1024
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Write a long story about a dragon.")
        await pilot.press("enter")
        platform = app.platform()
        assert isinstance(platform, LocalPlatform)

        def streaming() -> bool:
            session = screen.session
            entry = session.context.streaming_entry() if session is not None else None
            return bool(entry is not None and entry.content.strip() and platform.loaded)

        await wait_until(pilot, streaming, "the reply streamed")
        [engine] = platform.loaded
        os.kill(engine.pid, signal.SIGSEGV)

        def errors() -> list[ErrorItem]:
            return [i for i in screen.log_view.items() if isinstance(i, ErrorItem)]

        await wait_until(pilot, errors, "the crash was reported in the conversation")
        assert "SIGSEGV" in errors()[-1].error.reason and not screen.generating
        [conversation] = app_store.list_conversations()
        stored = list(app_store.load_context(conversation.id))
        question, partial = stored[-2], stored[-1]
        assert question.role is Role.USER and "dragon" in question.content
        assert partial.role is Role.ASSISTANT and partial.content.strip()
        assert not partial.complete and partial.finish_reason == "error"

        # The app keeps running and the next message is answered by a fresh engine (its
        # first words are enough: a whole reply of 400 tokens takes long on a busy CPU).
        await type_text(pilot, "Hello")
        await pilot.press("enter")

        def answering() -> bool:
            replies = [i for i in screen.log_view.items() if isinstance(i, AssistantMessage)]
            return bool(platform.loaded and len(replies) >= 2 and replies[-1].text.strip())

        await wait_until(pilot, answering, "the next reply streamed")
        [fresh] = platform.loaded
        assert fresh.pid != engine.pid
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
    # Leaving the app ends the engine.
    assert fresh.process.poll() is not None
