"""The app and config.toml: changes keep the user's text; problems in it are a notice.

The settings come from a real file in the test's config directory, read the way
``spezichat`` reads them, and the app runs under Textual's pilot.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.message import Message
from textual.notifications import Notification, Notify

from tests.core.test_settings_file import USER_FILE, WRONG_TYPES, with_line, write_config
from tests.tui.helpers import SIZE, chat, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings, config_path

TITLE = "Some settings in config.toml were not used."


def notices(seen: list[Message]) -> list[Notification]:
    return [m.notification for m in seen if isinstance(m, Notify)]


async def test_theme_and_sidebar_changes_keep_the_rest_of_the_file(
    make_app: Callable[..., SpeziChatApp],
) -> None:
    path = write_config(USER_FILE)
    app = make_app(Settings.load())
    async with app.run_test(size=SIZE) as pilot:
        sidebar = chat(pilot).sidebar
        await pilot.pause()
        assert app.theme == "nord"
        app.theme = "gruvbox"  # as the command palette's theme picker does
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: not sidebar.display, "the sidebar hidden")
        await pilot.pause()
    assert path.read_text(encoding="utf-8") == (
        USER_FILE.replace('theme = "nord"  # dark', 'theme = "gruvbox"  # dark').replace(
            "show_sidebar = true # I", "show_sidebar = false # I"
        )
    )


async def test_unknown_keys_and_sections_are_a_notice_naming_them(
    make_app: Callable[..., SpeziChatApp],
) -> None:
    write_config(USER_FILE)
    seen: list[Message] = []
    app = make_app(Settings.load())
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_until(pilot, lambda: notices(seen), "a notice")
        await pilot.pause()
    (notice,) = [n for n in notices(seen) if n.title == TITLE]
    assert notice.severity == "warning"
    assert notice.message.splitlines() == [
        "config.toml: [general] my_own_note is not a setting (ignored)",
        "config.toml: [plugins] is not a section of settings (ignored)",
        f"Their defaults apply meanwhile. Correct or delete these lines in {config_path()}.",
    ]


@pytest.mark.parametrize(("section", "key", "value", "message"), WRONG_TYPES)
async def test_a_wrong_type_is_a_notice_and_the_app_runs(
    make_app: Callable[..., SpeziChatApp], section: str, key: str, value: str, message: str
) -> None:
    write_config(with_line(section, f"{key} = {value}"))
    seen: list[Message] = []
    app = make_app(Settings.load())
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_until(pilot, lambda: notices(seen), "a notice")
        chat(pilot)  # the chat opened
    (notice,) = [n for n in notices(seen) if n.title == TITLE]
    assert notice.severity == "warning"
    assert notice.message.splitlines()[0] == message


async def test_the_notice_is_plain_text_without_control_characters(
    make_app: Callable[..., SpeziChatApp],
) -> None:
    write_config(with_line("openai", 'timeout = "\\u009b31m[bold]x[/]"'))
    seen: list[Message] = []
    app = make_app(Settings.load())
    async with app.run_test(size=SIZE, message_hook=seen.append, notifications=True) as pilot:
        await wait_until(pilot, lambda: notices(seen), "a notice")
        await pilot.pause()
    (notice,) = [n for n in notices(seen) if n.title == TITLE]
    first = notice.message.splitlines()[0]
    assert first == 'config.toml: [openai] timeout must be a number (got "\\u009b31m[bold]x[/]")'
    assert "\x9b" not in notice.message
