"""Key bindings: ids, remapping from the config, help, copy; settings and model switch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static, TextArea

from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, items, replies, send, type_text, wait_until
from tui import keymap
from tui.app import SpeziChatApp
from tui.screens.help import HelpScreen, bindings_table
from tui.screens.models import ModelPicker, order_models
from tui.screens.settings import SettingsScreen
from tui.settings import Settings
from tui.widgets.messages import AssistantMessage, ErrorItem, UserMessage, code_blocks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_binding_ids_are_unique_and_documented_in_the_readme() -> None:
    ids = [key.id for key in keymap.KEYS]
    assert len(ids) == len(set(ids))
    readme = README.read_text(encoding="utf-8")
    missing = [binding_id for binding_id in ids if f"`{binding_id}`" not in readme]
    assert not missing, f"README lacks {missing}"


def test_chat_keys_do_not_collide_with_the_prompts_editing_keys() -> None:
    editing: set[str] = set()
    for binding in TextArea.BINDINGS:
        keys = binding.key if hasattr(binding, "key") else binding[0]
        editing.update(keys.split(","))
    for key in keymap.KEYS:
        if key.scope in ("app", "chat") and key.id != "chat.stop":
            assert not editing & set(key.keys.split(",")), key.id


def test_check_keymap_keeps_good_entries_and_reports_bad_ones() -> None:
    usable, problems = keymap.check_keymap(
        {"chat.new": "ctrl+t", "chat.nope": "ctrl+x", "chat.search": 5}
    )
    assert usable == {"chat.new": "ctrl+t"}
    assert problems == [
        "unknown binding id 'chat.nope'",
        "'chat.search' needs keys as text, for example \"ctrl+t\"",
    ]


async def test_keybindings_from_the_config_remap_keys(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    mock_settings.ui.keybindings = {"chat.new": "ctrl+t", "no.such": "x"}
    seen: list[Message] = []
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await send(pilot, "hello")
        await pilot.press("ctrl+n")  # the old key does nothing now
        assert chat(pilot).conversation is not None
        await pilot.press("ctrl+t")
        assert chat(pilot).conversation is None and items(pilot) == []
        warnings = [m.notification for m in seen if isinstance(m, Notify)]
        assert any("no.such" in n.message and n.severity == "warning" for n in warnings), (
            "the bad entry is reported"
        )


def test_help_table_lists_every_binding_with_its_keys() -> None:
    console = Console(record=True, width=120)
    console.print(bindings_table({"chat.search": "ctrl+g"}))
    text = console.export_text()
    for key in keymap.KEYS:
        assert key.id in text and key.description in text
    search = next(line for line in text.splitlines() if "chat.search" in line)
    assert "ctrl+g" in search and "ctrl+f" not in search


async def test_help_screen_opens_with_the_remapped_keys(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    mock_settings.ui.keybindings = {"chat.search": "ctrl+g"}
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.keymap_override == {"chat.search": "ctrl+g"}
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_copy_a_message_and_a_code_block(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await pilot.press("ctrl+up")  # select the last message
        reply = app.focused
        assert isinstance(reply, AssistantMessage)
        await pilot.press("c")
        assert app.clipboard == reply.text
        await pilot.press("b")
        assert app.clipboard == code_blocks(reply.text)[0] == "print('hello, terminal')\n"
        await pilot.press("up")
        assert isinstance(app.focused, UserMessage)
        await pilot.press("c")
        assert app.clipboard == "hi"
        await pilot.press("escape")
        assert app.focused is chat(pilot).prompt


def test_models_are_ordered_chat_first_with_a_sensible_default() -> None:
    ordered, default = order_models(
        ["tts-1", "llama3.2", "gpt-4o", "gpt-4o-mini", "text-embedding-3-large", "o3-mini"]
    )
    assert ordered == [
        "gpt-4o",
        "gpt-4o-mini",
        "o3-mini",
        "llama3.2",
        "text-embedding-3-large",
        "tts-1",
    ]
    assert ordered[default] == "gpt-4o-mini"
    assert order_models(["b", "a"], current="b") == (["a", "b"], 1)


async def test_settings_screen_changes_the_next_request(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#temperature", Input).value = "7"
        await pilot.press("ctrl+s")
        assert "between 0 and 2" in str(screen.query_one("#settings-error", Static).render())
        screen.query_one("#temperature", Input).value = "0.3"
        screen.query_one("#max-tokens", Input).value = "50"
        screen.query_one("#system-prompt", TextArea).text = "Answer in French."
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, SettingsScreen)
        await send(pilot, "Bonjour")
    body = openai_server.chat_requests[-1].body
    assert body["temperature"] == 0.3 and body["max_completion_tokens"] == 50
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    saved = Settings.load()
    assert saved.general.temperature == 0.3 and saved.general.max_tokens == 50


async def test_model_switch_lists_the_servers_models(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        assert isinstance(app.screen, ModelPicker)
        options = app.screen.query_one(OptionList)
        await wait_until(pilot, lambda: options.option_count == 2, "the model list")
        await type_text(pilot, "mini")
        assert options.option_count == 1
        await pilot.press("enter")
        assert chat(pilot).status.model == "gpt-test-mini"
        openai_server.script(Reply(text="From mini."))
        await send(pilot, "Which model?")
        assert replies(pilot)[-1].text == "From mini."
    assert openai_server.chat_requests[-1].body["model"] == "gpt-test-mini"
    assert Settings.load().general.model == "gpt-test-mini"


async def test_a_bad_value_in_the_config_is_explained_and_fixable(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    mock_settings.general.temperature = "hot"  # type: ignore[assignment]  # as hand-edited
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        error = next(item for item in items(pilot) if isinstance(item, ErrorItem))
        assert "temperature" in error.error.description
        assert "'hot'" in error.error.reason and "F2" in error.error.suggestion
        await type_text(pilot, "kept")
        await pilot.press("enter")  # no session: the text stays in the prompt
        assert chat(pilot).prompt.text == "kept"
        await pilot.press("f2")
        app.screen.query_one("#temperature", Input).value = "0.5"
        await pilot.press("ctrl+s")
        await pilot.press("enter")
        await wait_until(pilot, lambda: replies(pilot), "a reply")
        assert [item.copy_text() for item in items(pilot) if isinstance(item, UserMessage)] == [
            "kept"
        ]


def palette_offers(pilot: Pilot[Any], command: str) -> bool:
    """Whether the command palette is open with ``command`` highlighted."""
    palette = pilot.app.screen
    if not isinstance(palette, CommandPalette):
        return False
    results = palette.query_one(CommandList)
    if results.highlighted is None:
        return False
    return command in str(results.get_option_at_index(results.highlighted).prompt)


async def test_switch_model_from_the_command_palette(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await type_text(pilot, "Switch model")
        await wait_until(pilot, lambda: palette_offers(pilot, "Switch model"), "the command")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), "the model picker")
        await type_text(pilot, "my-own-model")
        await pilot.press("enter")
        assert chat(pilot).status.model == "my-own-model"


async def test_theme_changes_are_remembered(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    mock_settings.ui.theme = "nord"
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "nord"
        app.theme = "gruvbox"  # as the command palette's theme picker does
        await pilot.pause()
    assert Settings.load().ui.theme == "gruvbox"
