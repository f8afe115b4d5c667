"""Make the README's screenshots from the real app (``python screenshots/make_screenshots.py``).

The app runs headless (``App.run_test``) at a fixed terminal size with temporary config
and data directories, so your own settings, key and history are never read or written.
The onboarding talks to the loopback OpenAI-compatible test server of the test suite
(for the key check and the model list); the chat uses the mock backend.
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
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(name, None)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


async def _wait(pilot: object, condition: object, what: str) -> None:
    for _ in range(200):
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


async def main() -> None:
    from tests.support.openai_server import OpenAITestServer

    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small", "tts-1")
    with tempfile.TemporaryDirectory() as base:
        _isolate(Path(base))
        with OpenAITestServer(api_key=DEMO_KEY, models=models) as server:
            shots = await onboarding(server.base_url)
        shots += await chat()
    for shot in shots:
        print(shot.relative_to(ROOT))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    asyncio.run(main())
