"""Make the README's screenshots from the real app (``python screenshots/make_screenshots.py``).

The app runs headless (``App.run_test``) at a fixed terminal size with temporary config
and data directories, so your own settings, key and history are never read or written.
The onboarding talks to the loopback OpenAI-compatible test server of the test suite
(for the key check and the model list); the chat uses the mock backend. The on-device
branch downloads a model (zero bytes of the catalog size) from the suite's loopback
Hugging Face hub, slowed down so that the progress bar is caught mid-way; the fog branch
finds a TLS node (certificates as `fog init` makes them) advertised over mDNS on
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
SIZE = (100, 30)
DEMO_KEY = "sk-demo-0123456789abcdef"


def _isolate(base: Path) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        os.environ[name] = str(base / name.lower())
    os.environ["HF_HOME"] = str(base / "hf-home")
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "SPEZICHAT_FOG_CA_CERT",
        "SPEZICHAT_FOG_TOKEN",
    ):
        os.environ.pop(name, None)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


async def _wait(pilot: object, condition: object, what: str, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():  # type: ignore[operator]
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise SystemExit(f"screenshot script: the app never reached {what}")


async def onboarding(server_url: str) -> list[Path]:
    from backends.runner import Runner
    from tui.app import SpeziChatApp
    from tui.onboarding.openai import ModelStep
    from tui.settings import Settings
    from tui.store import Store

    os.environ["OPENAI_BASE_URL"] = server_url
    shots: list[Path] = []
    with Store.open_default() as store:
        app = SpeziChatApp(settings=Settings(), store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            shots.append(Path(app.save_screenshot("welcome.svg", path=str(OUT))))
            await pilot.press("enter")
            await pilot.pause()
            shots.append(Path(app.save_screenshot("backend-choice.svg", path=str(OUT))))
            await pilot.press("enter")
            await pilot.press(*DEMO_KEY)
            await pilot.pause()
            shots.append(Path(app.save_screenshot("api-key.svg", path=str(OUT))))
            await pilot.press("enter")
            await _wait(pilot, lambda: isinstance(app.screen, ModelStep), "the model step")
            await pilot.pause()
            shots.append(Path(app.save_screenshot("model-choice.svg", path=str(OUT))))
    del os.environ["OPENAI_BASE_URL"]
    return shots


async def _choose_backend(pilot: object, app: object, branch_id: str) -> None:
    from textual.widgets import OptionList

    await pilot.press("enter")  # type: ignore[attr-defined]  # welcome
    options = app.screen.query_one(OptionList)  # type: ignore[attr-defined]
    options.highlighted = options.get_option_index(branch_id)
    await pilot.press("enter")  # type: ignore[attr-defined]


async def local_download() -> list[Path]:
    from textual.widgets import OptionList, ProgressBar

    from backends.local.catalog import find_entry
    from backends.runner import Runner
    from tests.support.hub_server import HubServer
    from tui.app import SpeziChatApp
    from tui.onboarding.local import LocalDownloadStep, StarterModelStep
    from tui.settings import Settings
    from tui.store import Store
    from tui.widgets.download_panel import DownloadPanel

    entry = find_entry("qwen2.5-0.5b")
    assert entry is not None
    shots: list[Path] = []
    # As many bytes as the real file (zeros: a memoryview, so the server never copies
    # them); about 60 MB/s, so the bar is caught part of the way through.
    with HubServer(chunk_delay=0.001) as hub, Store.open_default() as store:
        hub.add_file(entry.repo, entry.file, memoryview(bytes(entry.size_bytes)))  # type: ignore[arg-type]
        os.environ["HF_ENDPOINT"] = hub.url
        app = SpeziChatApp(settings=Settings(), store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await _choose_backend(pilot, app, "local")
            step = app.screen
            assert isinstance(step, StarterModelStep)
            await _wait(pilot, lambda: "RAM" in str(step.query_one("#memory").render()), "hints")
            await pilot.pause()
            shots.append(Path(app.save_screenshot("local-models.svg", path=str(OUT))))
            catalog = step.query_one("#catalog", OptionList)
            catalog.focus()
            catalog.highlighted = catalog.get_option_index(entry.id)
            await pilot.press("enter")
            await _wait(pilot, lambda: isinstance(app.screen, LocalDownloadStep), "the download")
            bar = app.screen.query_one("#download-bar", ProgressBar)
            await _wait(pilot, lambda: (bar.percentage or 0) >= 0.4, "the mark", 30)
            shots.append(Path(app.save_screenshot("download.svg", path=str(OUT))))
            panel = app.screen.query_one(DownloadPanel)
            panel.cancel()
            await _wait(pilot, lambda: not panel.running, "the stop")
        del os.environ["HF_ENDPOINT"]
    return shots


async def fog_discovery(base: Path) -> list[Path]:
    from textual.widgets import Input, OptionList

    from backends.fog.advertise import FogAdvertiser
    from backends.fog.certs import create_node_certificates
    from backends.runner import Runner
    from tests.fog.conftest import LOOPBACK, TOKEN, server_context
    from tests.support.openai_server import OpenAITestServer
    from tui.app import SpeziChatApp
    from tui.onboarding.fog import FogAccessStep, FogNodesStep
    from tui.settings import Settings
    from tui.store import Store

    name = "spezillmfog-demo"  # the only name browsed, so no other node on this machine shows
    certs = create_node_certificates(base / "fog-node")
    settings = Settings()
    settings.fog.service_names = [name]
    settings.fog.interfaces = list(LOOPBACK)
    context = server_context(certs)
    with (
        OpenAITestServer(api_key=TOKEN, models=("llama3.2:3b",), ssl_context=context) as node,
        Store.open_default() as store,
    ):
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await _choose_backend(pilot, app, "fog")
            access = app.screen
            assert isinstance(access, FogAccessStep)
            access.query_one("#fog-ca", Input).value = str(certs.ca_cert)
            token = access.query_one("#fog-token", Input)
            token.focus()
            token.insert_text_at_cursor(TOKEN)
            await pilot.press("enter")
            await _wait(pilot, lambda: isinstance(app.screen, FogNodesStep), "the node list")
            options = app.screen.query_one("#fog-nodes", OptionList)
            async with FogAdvertiser(node.port, name=name, interfaces=LOOPBACK):
                await _wait(
                    pilot,
                    lambda: (
                        options.option_count == 1 and not options.get_option_at_index(0).disabled
                    ),
                    "the node in the list, checked",
                )
                await pilot.pause()
                return [Path(app.save_screenshot("fog-discovery.svg", path=str(OUT)))]


async def chat() -> list[Path]:
    from backends.context import Context
    from backends.runner import Runner
    from tui.app import SpeziChatApp
    from tui.screens.chat import ChatScreen
    from tui.settings import Settings
    from tui.store import Store

    settings = Settings()
    settings.general.backend = "mock"
    settings.general.model = "mock"
    with Store.open_default() as store:
        for title, question, answer in (
            ("Fog nodes on my LAN", "What is a fog node?", "A server on your network."),
            ("Packing list for Lisbon", "What should I pack?", "Light clothes and shoes."),
        ):
            conversation = store.create_conversation(title, "mock", "mock")
            context = Context.with_system([settings.general.system_prompt])
            context.append_user(question)
            context.append_assistant(answer, complete=True)
            for entry in context:
                store.save_entry(conversation.id, entry)
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ChatScreen)
            await pilot.press("ctrl+n")
            await pilot.press(*"How do I print in Python?")
            await pilot.press("enter")
            await _wait(pilot, lambda: not screen.generating, "the end of the reply")
            await pilot.pause(0.3)
            return [Path(app.save_screenshot("chat.svg", path=str(OUT)))]


async def web() -> list[Path]:
    """``web.png``: a chat in Chromium through ``spezichat web`` (tests/web/browser.py)."""
    from tests.web.browser import browser_missing, chat_screenshot

    missing = browser_missing()
    if missing:
        print(f"web.png skipped: {missing}", file=sys.stderr)
        return []
    # Playwright's sync API runs outside this event loop.
    return [await asyncio.to_thread(chat_screenshot, OUT / "web.png")]


async def main() -> None:
    from tests.support.openai_server import OpenAITestServer

    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small", "tts-1")
    with tempfile.TemporaryDirectory() as base:
        _isolate(Path(base))
        with OpenAITestServer(api_key=DEMO_KEY, models=models) as server:
            shots = await onboarding(server.base_url)
        shots += await local_download()
        shots += await fog_discovery(Path(base))
        shots += await chat()
        shots += await web()
    for shot in shots:
        print(shot.relative_to(ROOT))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    asyncio.run(main())
