"""Typing ahead while a reply streams never answers a function-approval dialog.

The dialog opens in the middle of the user's typing. Keys that belong to that typing
(arriving before the keyboard has been quiet for a moment) go back into the prompt; only
a key after a pause answers. Driven against the loopback OpenAI server.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.functions import llm_function
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall
from tests.tui.helpers import SIZE, approval_dialog, chat, items, type_text, wait_until
from tui.app import SpeziChatApp
from tui.screens.dialogs import TYPE_AHEAD_QUIET, ToolApprovalDialog
from tui.settings import Settings
from tui.widgets.messages import ToolCallItem

calls: list[str] = []


@llm_function
def delete_files(pattern: str) -> str:
    """Delete the files that match a pattern.

    Args:
        pattern: A glob pattern.
    """
    calls.append(pattern)
    return f"deleted {pattern}"


def _script(server: OpenAITestServer) -> None:
    server.script(
        Reply(tool_calls=[ScriptedCall("delete_files", {"pattern": "*.txt"})]),
        Reply(text="Done."),
    )


async def test_keys_typed_as_the_dialog_opens_go_to_the_prompt_not_the_dialog(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    calls.clear()
    _script(openai_server)
    app = make_app(openai_settings, tools=(delete_files,))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Tidy up")
        await pilot.press("enter")
        dialog = await approval_dialog(pilot, ready=False)
        assert not dialog.answerable
        # "okay" has a y, Enter and Space would press the focused button.
        await type_text(pilot, "okay yes")
        await pilot.press("enter")
        assert app.screen is dialog, "a typed key answered the dialog"
        assert screen.prompt.text == "okay yes"
        assert calls == []
        await wait_until(pilot, lambda: dialog.answerable, "the dialog taking answers")
        await pilot.press("n")
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        tool = next(item for item in items(pilot) if isinstance(item, ToolCallItem))
        assert tool.outcome == "declined"
        assert calls == []
        assert screen.prompt.text == "okay yes"


async def test_steady_typing_keeps_the_dialog_waiting_until_a_pause(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    calls.clear()
    _script(openai_server)
    app = make_app(openai_settings, tools=(delete_files,))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Tidy up")
        await pilot.press("enter")
        dialog = await approval_dialog(pilot, ready=False)
        word = "number"
        # Each key comes well within the quiet time of the last one, and together they
        # last longer than the quiet time: the dialog must keep waiting throughout.
        for key in word:
            await pilot.press(key)
            await pilot.pause(TYPE_AHEAD_QUIET / 3)
            assert isinstance(app.screen, ToolApprovalDialog), f"{key!r} answered the dialog"
        assert screen.prompt.text == word
        await pilot.press("backspace")
        assert screen.prompt.text == word[:-1]
        await wait_until(pilot, lambda: dialog.answerable, "the dialog taking answers")
        await pilot.press("y")
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        assert calls == ["*.txt"]
        assert screen.prompt.text == word[:-1]
