"""The warm-up thread: what the first reply needs is prepared while the user types."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from textual.message import Message
from textual.worker import Worker, WorkerState

from tests.tui.helpers import SIZE, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.warmup import MODULES
from tui.widgets.reply import prepare_lexers


def _after_warm_up(backend: str) -> tuple[list[str], set[str]]:
    """In a fresh interpreter: what ``warm_up(backend)`` reports failed, modules loaded."""
    probe = (
        "import sys\nfrom tui.warmup import warm_up\n"
        f"print(','.join(warm_up({backend!r})))\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    failed, *modules = result.stdout.split("\n")
    return [name for name in failed.split(",") if name], set(modules)


def test_warm_up_imports_the_http_stack_for_an_http_backend() -> None:
    failed, modules = _after_warm_up("openai")
    assert failed == []
    assert set(MODULES["openai"]) <= modules
    assert {"httpcore", "h11", "httpx_sse"} <= modules


def test_warm_up_for_the_on_device_backend_leaves_the_http_stack_alone() -> None:
    failed, modules = _after_warm_up("local")
    assert failed == []
    assert "httpcore" not in modules and "httpx_sse" not in modules


def test_lexers_are_prepared_and_unknown_languages_reported() -> None:
    assert prepare_lexers(["python", "json", "no-such-language"]) == ["no-such-language"]


async def test_the_chat_screen_warms_up_on_a_thread_once_it_is_up(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    seen: list[Message] = []
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:

        def warmed() -> list[Worker[object]]:
            return [
                message.worker
                for message in seen
                if isinstance(message, Worker.StateChanged)
                and message.worker.group == "warm-up"
                and message.state == WorkerState.SUCCESS
            ]

        await wait_until(pilot, warmed, "the warm-up worker finished")
        (worker,) = warmed()
        assert worker.is_finished and worker.error is None
