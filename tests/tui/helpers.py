"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from tui.screens.chat import ChatScreen
from tui.screens.dialogs import ToolApprovalDialog
from tui.widgets.messages import AssistantMessage, ChatItem

SIZE = (80, 24)


POLL_S = 0.05


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, *, limit_s: float = 30.0
) -> None:
    """Let the app run until ``condition()`` holds.

    The one condition wait of the suite's pilot tests (and of the snapshot scenes): the app
    runs in steps of :data:`POLL_S` between checks. ``limit_s`` is a generous safety net
    for a test that would otherwise hang, never a timing assertion.
    """
    for _ in range(max(1, round(limit_s / POLL_S))):
        if condition():
            return
        await pilot.pause(POLL_S)
    if condition():
        return
    raise AssertionError(f"the app never reached: {what}")


def chat(pilot: Pilot[Any]) -> ChatScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen), f"expected the chat screen, got {screen!r}"
    return screen


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` key by key (newlines with Ctrl+J)."""
    keys = ["ctrl+j" if ch == "\n" else "space" if ch == " " else ch for ch in text]
    await pilot.press(*keys)


async def send(pilot: Pilot[Any], text: str) -> None:
    """Type a message, press Enter and wait for the reply to finish."""
    screen = chat(pilot)
    await type_text(pilot, text)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not screen.generating, "the reply finished")
    await pilot.pause()


def items(pilot: Pilot[Any]) -> list[ChatItem]:
    return chat(pilot).log_view.items()


def replies(pilot: Pilot[Any]) -> list[AssistantMessage]:
    return [item for item in items(pilot) if isinstance(item, AssistantMessage)]


async def approval_dialog(pilot: Pilot[Any], *, ready: bool = True) -> ToolApprovalDialog:
    """Wait for the function-approval dialog; with ``ready``, until it takes an answer."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog), "the dialog")
    dialog = app.screen
    assert isinstance(dialog, ToolApprovalDialog)
    if ready:
        await wait_until(pilot, lambda: dialog.answerable, "the dialog taking answers")
    return dialog
