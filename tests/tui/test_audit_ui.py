"""A new user's audit (issue #15): what they could not reach, see or leave.

Help's last rows at any size, a selected or found "You" message, leaving the onboarding
with Esc, a model that is no chat model, the command palette, the onboarding card on
small terminals, the model picker's count and the settings form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.app import Notify
from textual.color import Color
from textual.containers import VerticalScroll
from textual.message import Message
from textual.notifications import Notification
from textual.widget import Widget
from textual.widgets import Input, OptionList, Select, Static

from tests.support.openai_server import OpenAITestServer
from tests.tui.conftest import KEY
from tests.tui.helpers import SIZE, chat, items, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.onboarding.openai import ApiKeyStep, ModelStep
from tui.onboarding.screens import BackendChoiceStep, WelcomeStep
from tui.screens.chat import ChatScreen
from tui.screens.dialogs import ConfirmDialog
from tui.screens.help import HelpScreen
from tui.screens.models import ModelPicker
from tui.screens.search import SearchScreen
from tui.screens.settings import SettingsScreen
from tui.settings import Settings, config_path
from tui.widgets.messages import UserMessage


def notices(seen: list[Message]) -> list[Notification]:
    return [message.notification for message in seen if isinstance(message, Notify)]


def shown_at(widget: Widget, y: int) -> bool:
    """Whether the screen draws ``widget`` or its child (not a parent that clips it) on row
    ``y``."""
    screen = widget.screen
    if not 0 <= y < screen.size.height:
        return False
    try:
        under, _ = screen.get_widget_at(widget.region.x, y)
    except Exception:  # nothing there
        return False
    return under is widget or widget in under.ancestors


def fully_shown(widget: Widget) -> bool:
    region = widget.region
    return region.height > 0 and all(
        shown_at(widget, y) for y in range(region.y, region.y + region.height)
    )


# 1. Help: the table scrolls to its last row -----------------------------------------------
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (40, 12), (120, 45)])
async def test_help_scrolls_to_its_last_row_at_any_size(
    size: tuple[int, int], mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=size) as pilot:
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        scroll = app.screen.query_one("#help-table", VerticalScroll)
        table = scroll.query(Static).last()  # the bindings table comes last
        scroll.scroll_end(animate=False)
        await pilot.pause()
        last_row = table.region.y + table.region.height - 1
        assert shown_at(table, last_row), f"the last binding row is cut off at {size}"
        assert shown_at(table, table.region.y + table.region.height - 3)


# 2. A selected or found user message looks selected --------------------------------------
def look(widget: Widget) -> tuple[Color, object]:
    return widget.styles.background, widget.styles.border_left


async def test_a_selected_user_message_looks_selected(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "remember the zebra")
        user = next(item for item in items(pilot) if isinstance(item, UserMessage))
        plain = look(user)
        await pilot.press("ctrl+up", "up")  # the reply, then the user's message
        assert app.focused is user
        await wait_until(pilot, lambda: look(user) != plain, "the selected message stands out")


async def test_a_search_hit_in_a_user_message_is_marked(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "remember the zebra")
        user = next(item for item in items(pilot) if isinstance(item, UserMessage))
        plain = look(user)
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "the search")
        hits = app.screen.query_one("#hits", OptionList)
        await type_text(pilot, "zebra")
        await wait_until(pilot, lambda: hits.option_count > 0, "a hit")
        await pilot.press("enter", "enter")
        # The hit is marked for a moment (a timer removes the mark): look while it is.
        await wait_until(
            pilot, lambda: "found" in user.classes and look(user) != plain, "the hit marked"
        )


# 4. Esc leaves the onboarding -------------------------------------------------------------
async def test_escape_on_welcome_with_a_setup_in_place_opens_the_chat_unchanged(
    make_app: Callable[..., SpeziChatApp], mock_settings: Settings
) -> None:
    mock_settings.save()
    before = config_path().read_text()
    app = make_app(Settings.load(), force_onboarding=True)  # spezichat --onboarding
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, WelcomeStep)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        assert (app.settings.general.backend, app.settings.general.model) == ("mock", "mock")
    assert config_path().read_text() == before


async def test_escape_on_welcome_after_change_backend_returns_to_the_same_chat(
    make_app: Callable[..., SpeziChatApp], mock_settings: Settings
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        stack = list(app.screen_stack)
        [change] = [
            command
            for command in app.get_system_commands(screen)
            if command.title == "Change backend"
        ]
        change.callback()
        await wait_until(pilot, lambda: isinstance(app.screen, WelcomeStep), "the welcome")
        await pilot.press("enter")  # one step in and back again
        assert isinstance(app.screen, BackendChoiceStep)
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: app.screen is screen, "the chat again")
        assert list(app.screen_stack) == stack
        assert app.settings.general.backend == "mock"


async def test_escape_on_welcome_on_the_first_start_says_how_to_quit(
    make_app: Callable[..., SpeziChatApp],
) -> None:
    seen: list[Message] = []
    app = make_app(Settings())
    async with app.run_test(size=SIZE, message_hook=seen.append, notifications=True) as pilot:
        assert isinstance(app.screen, WelcomeStep)
        await pilot.press("escape")
        await wait_until(pilot, lambda: notices(seen), "a notice")
        assert isinstance(app.screen, WelcomeStep)  # nothing to go back to
    (notice,) = notices(seen)
    assert "Ctrl+Q to quit" in notice.message


# 5. A model marked "(not a chat model)" is not taken without asking ------------------------
@pytest.fixture
def fresh_openai(openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.models = ["text-embedding-3-small", "gpt-test", "gpt-4o-mini", "whisper-1"]


async def _to_model_step(pilot: Any) -> OptionList:
    app = pilot.app
    await pilot.press("enter", "enter")  # welcome, OpenAI
    assert isinstance(app.screen, ApiKeyStep)
    await type_text(pilot, KEY)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ModelStep), "the model step")
    options: OptionList = app.screen.query_one("#models", OptionList)
    return options


async def test_a_model_that_is_no_chat_model_needs_a_yes(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=SIZE) as pilot:
        options = await _to_model_step(pilot)
        step = app.screen
        options.highlighted = options.get_option_index("text-embedding-3-small")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("n")  # choose another
        await wait_until(pilot, lambda: app.screen is step, "back to the list")
        assert not config_path().exists()
        assert not app.settings.onboarded
        options.highlighted = options.get_option_index("whisper-1")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")  # the user insists
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
    assert Settings.load().general.model == "whisper-1"


# 14. The command palette holds spezichat's commands ----------------------------------------
async def test_the_palette_offers_only_spezichats_commands(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await pilot.press("ctrl+up")  # a focused, maximizable widget would offer "Maximize"
        titles = [command.title for command in app.get_system_commands(screen)]
    assert not {"Keys", "Maximize", "Minimize", "Screenshot"} & set(titles)
    assert {"Theme", "Quit", "Help", "Settings", "Change backend"} <= set(titles)


# 16. The onboarding card on small terminals -----------------------------------------------
async def test_the_key_card_fits_80x24_with_the_key_in_the_environment(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    app = make_app(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter", "enter")
        assert isinstance(app.screen, ApiKeyStep)
        await pilot.pause()
        title = app.screen.query_one(".onboarding-title", Static)
        assert fully_shown(title)
        assert fully_shown(app.screen.query_one("#check"))  # nothing below the fold


async def test_a_key_error_shows_at_40x12_without_tab(
    fresh_openai: None, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(Settings())
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.press("enter", "enter")
        assert isinstance(app.screen, ApiKeyStep)
        await pilot.press("enter")  # no key typed
        status = app.screen.query_one("#key-status", Static)
        await wait_until(pilot, lambda: "error" in status.classes, "the error")
        await wait_until(pilot, lambda: fully_shown(status), "the whole error in sight")
        assert fully_shown(app.screen.query_one(".onboarding-title", Static))
        assert app.focused is app.screen.query_one("#api-key", Input)


# 17. F3's count follows the filter; F2 scrolls to Theme and says where it saved ------------
async def test_the_model_count_follows_the_filter(
    openai_settings: Settings,
    openai_server: OpenAITestServer,
    make_app: Callable[..., SpeziChatApp],
) -> None:
    openai_server.models = ["gpt-test", "gpt-test-mini", "gpt-4o-mini", "whisper-1"]
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), "the picker")
        info = app.screen.query_one("#model-info", Static)
        await wait_until(pilot, lambda: str(info.render()).startswith("4 models"), "the list")
        await type_text(pilot, "mini")
        await wait_until(pilot, lambda: str(info.render()).startswith("2 of 4 models"), "2 of 4")
        await type_text(pilot, "-none")
        await wait_until(pilot, lambda: str(info.render()).startswith("0 of 4"), "0 of 4")
        assert "Enter uses the id as typed" in str(info.render())


async def test_settings_scroll_to_theme_with_a_visible_scrollbar_and_saving_says_where(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    seen: list[Message] = []
    app = make_app(mock_settings)
    async with app.run_test(size=(80, 24), message_hook=seen.append, notifications=True) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen), "the settings")
        form = app.screen.query_one("#settings-form", VerticalScroll)
        theme = app.screen.query_one("#theme", Select)
        await pilot.pause()
        assert not fully_shown(theme) and form.max_scroll_y > 0  # below the fold at 80x24
        assert form.show_vertical_scrollbar
        surface = app.screen.query_one("#settings").styles.background
        thumb = surface + form.styles.scrollbar_color
        assert abs(thumb.brightness - surface.brightness) > 0.15, "the scrollbar stands out"
        while app.focused is not theme:
            await pilot.press("tab")
        await wait_until(pilot, lambda: fully_shown(theme), "Theme scrolled into view")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: notices(seen), "a notice")
    (notice,) = notices(seen)
    assert notice.message == f"Settings saved to {config_path()}"
    assert config_path().is_file()
