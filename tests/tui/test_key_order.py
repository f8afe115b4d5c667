"""Keys that arrive together act in the order they were typed.

tmux ``send-keys "hello" Enter``, autotype, a paste without bracketed paste or a
coalescing SSH link deliver text and Enter (or Ctrl+J) in one read. Enter and Ctrl+J are
priority bindings that the app runs as soon as it reads them, while the characters
before them are still queued for the prompt: Enter sent an empty prompt (nothing, and the
next Enter sent both messages glued together) and Ctrl+J put its line break before the
text. The rule now: a burst acts exactly as if typed key by key, so a burst that ends in
Enter sends its text; a bracketed paste (one Paste event) never sends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import events

from backends.context import Role
from tests.support.terminal import stored_entries, terminal
from tests.tui.helpers import SIZE, chat, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store, default_path


def _user_messages(path: Path) -> list[str]:
    return [content for role, content, _, _ in stored_entries(path) if role == "user"]


def _replies_done(path: Path) -> int:
    return sum(1 for role, _, done, _ in stored_entries(path) if role == "assistant" and done)


def test_text_and_enter_in_one_read_send_the_text_on_a_real_terminal(
    mock_settings: Settings,
) -> None:
    mock_settings.save()  # the real app reads config.toml
    database = default_path()
    with terminal() as term:
        term.wait_for(lambda: "Message" in term.text(), "the chat screen")
        term.type("hello\r")  # as `tmux send-keys "hello" Enter` delivers it
        term.wait_for(lambda: _user_messages(database) == ["hello"], "'hello' sent")
        term.wait_for(lambda: _replies_done(database) == 1, "the first reply")
        term.type("first line\nsecond line\r")  # Ctrl+J is \n
        term.wait_for(
            lambda: _user_messages(database)[1:] == ["first line\nsecond line"],
            "the two-line message sent, in order",
        )
        term.wait_for(lambda: _replies_done(database) == 2, "the second reply")


def _post_keys(app: SpeziChatApp, keys: str) -> None:
    """Deliver ``keys`` as the terminal driver does for one read: all before any is handled."""
    names = {"\r": "enter", "\n": "ctrl+j", " ": "space"}
    for character in keys:
        app.post_message(events.Key(names.get(character, character), character))


async def test_a_burst_with_ctrl_j_keeps_the_line_break_where_it_was_typed(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        _post_keys(app, "ab\ncd\nef")
        await wait_until(pilot, lambda: len(screen.prompt.text) == 8, "the keys handled")
        assert screen.prompt.text == "ab\ncd\nef"


async def test_a_burst_ending_in_enter_sends_exactly_its_text_once(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        _post_keys(app, "one\ntwo\r")
        await wait_until(pilot, lambda: store.list_conversations(), "the message sent")
        assert screen.prompt.text == ""
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
    context = store.load_context(store.list_conversations()[0].id)
    assert [e.content for e in context if e.role is Role.USER] == ["one\ntwo"]


async def test_a_bracketed_paste_with_line_breaks_stays_in_the_prompt_unsent(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        app.post_message(events.Paste("first\r\nsecond\rthird\r"))
        await wait_until(pilot, lambda: "third" in screen.prompt.text, "the paste")
        await pilot.pause()
        assert screen.prompt.text == "first\nsecond\nthird\n"
        assert not screen.generating and store.list_conversations() == []
        _post_keys(app, "!\r")
        await wait_until(pilot, lambda: store.list_conversations(), "the message sent")
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
    context = store.load_context(store.list_conversations()[0].id)
    assert [e.content for e in context if e.role is Role.USER] == ["first\nsecond\nthird\n!"]
