"""Conversations: restart, the sidebar (new, switch, rename, delete), search, export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, OptionList

from backends.context import Context, Role
from tests.tui.helpers import SIZE, chat, items, replies, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.screens.dialogs import ConfirmDialog, TextDialog
from tui.screens.search import SearchScreen
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import HISTORY_WINDOW, AssistantMessage, NoticeItem, UserMessage
from tui.widgets.sidebar import ConversationList


def _conversation(store: Store, title: str, pairs: list[tuple[str, str]]) -> str:
    """Store a conversation of (question, answer) pairs; returns its id."""
    conversation = store.create_conversation(title, "mock", "mock")
    context = Context.with_system(["Be brief."])
    for question, answer in pairs:
        context.append_user(question)
        context.append_assistant(answer, complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    return conversation.id


async def test_restart_shows_the_stored_conversation(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Remember me")
        first = replies(pilot)[-1].text
        assert first
    again = make_app(mock_settings)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = chat(pilot)
        user, reply = items(pilot)
        assert isinstance(user, UserMessage) and user.text == "Remember me"
        assert isinstance(reply, AssistantMessage) and reply.text == first
        sidebar = screen.sidebar
        assert sidebar.option_count == 1 and sidebar.highlighted_id == screen.conversation.id
        # ... and the conversation goes on.
        await send(pilot, "Again")
        assert len(replies(pilot)) == 2
    assert len(store.list_conversations()) == 1


async def test_sidebar_new_switch_rename_delete(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    older = _conversation(store, "Older chat", [("old question", "old answer")])
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        assert screen.conversation is not None and screen.conversation.id == older
        await pilot.press("ctrl+n")
        assert screen.conversation is None and items(pilot) == []
        await send(pilot, "A new topic")
        assert len(store.list_conversations()) == 2
        # Switch back through the sidebar.
        await pilot.press("ctrl+l")
        sidebar = screen.query_one(ConversationList)
        assert sidebar.has_focus
        sidebar.highlighted = sidebar.get_option_index(older)
        await pilot.press("enter")
        assert screen.conversation is not None and screen.conversation.id == older
        assert [item.copy_text() for item in items(pilot)] == ["old question", "old answer"]
        # Rename it.
        await pilot.press("ctrl+l", "r")
        assert isinstance(app.screen, TextDialog)
        field = app.screen.query_one(Input)
        field.value = ""
        await type_text(pilot, "Renamed chat")
        await pilot.press("enter")
        await pilot.pause()
        renamed = store.get_conversation(older)
        assert renamed is not None and renamed.title == "Renamed chat"
        assert "Renamed chat" in str(sidebar.get_option(older).prompt)
        # Delete it (after confirming).
        await pilot.press("ctrl+l", "d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        assert store.get_conversation(older) is None
        assert screen.conversation is None and sidebar.option_count == 1
        await pilot.press("ctrl+b")
        assert not sidebar.display


async def test_search_jumps_to_the_message_in_another_conversation(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    pairs = [(f"question {i}", f"answer {i}") for i in range(HISTORY_WINDOW)]
    pairs[3] = ("Where do axolotls live?", "Axolotls live in lakes near Mexico City.")
    target = _conversation(store, "Long chat", pairs)
    _conversation(store, "Latest chat", [("hello", "hi")])
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        assert screen.conversation is not None and screen.conversation.id != target
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, SearchScreen)
        await type_text(pilot, "axolotls")
        hits = app.screen.query_one("#hits", OptionList)
        await wait_until(pilot, lambda: hits.option_count == 2, "two hits")
        await pilot.press("enter", "enter")  # to the results, then open the first
        await wait_until(pilot, lambda: app.screen is screen, "back in the chat")
        assert screen.conversation is not None and screen.conversation.id == target
        focused = app.focused
        # The message was older than the drawn window: it was drawn on demand.
        assert isinstance(focused, (UserMessage, AssistantMessage))
        assert "axolotls" in focused.copy_text().lower()
        assert "found" in focused.classes


async def test_long_history_draws_a_window_and_loads_earlier_on_demand(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    _conversation(store, "Long", [(f"q{i}", f"a{i}") for i in range(200)])
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        log = chat(pilot).log_view
        assert len(log.items()) == HISTORY_WINDOW
        assert len(log.hidden_entries) == 400 - HISTORY_WINDOW
        log.query_one("#earlier").press()
        await pilot.pause()
        assert len(log.items()) == 2 * HISTORY_WINDOW
        assert log.items()[0].copy_text() == f"q{200 - HISTORY_WINDOW}"
        # Up from the oldest drawn message draws the next older ones and moves on.
        log.items()[0].focus()
        await pilot.press("up")
        await pilot.pause()
        assert len(log.items()) == 3 * HISTORY_WINDOW
        assert app.focused is log.items()[HISTORY_WINDOW - 1]
        assert log.items()[HISTORY_WINDOW - 1].copy_text() == f"a{200 - HISTORY_WINDOW - 1}"


async def test_export_writes_markdown_and_json_and_shows_the_paths(
    openai_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+s")  # nothing to export yet: a hint, no file
        await send(pilot, "Export me")
        await pilot.press("ctrl+s")
        await pilot.pause()
        notice = next(item for item in items(pilot) if isinstance(item, NoticeItem))
    exports = Path(openai_settings.ui.export_dir)
    files = sorted(exports.iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    assert all(str(f) in notice.text for f in files)
    markdown = files[1].read_text(encoding="utf-8")
    assert "Export me" in markdown
    data = json.loads(files[0].read_text(encoding="utf-8"))
    assert "Export me" in json.dumps(data)
    conversation = store.list_conversations()[0]
    roles = [e.role for e in store.load_context(conversation.id)]
    assert roles == [Role.SYSTEM, Role.USER, Role.ASSISTANT]


async def test_narrow_terminal_hides_the_list_until_asked(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        sidebar = chat(pilot).sidebar
        assert sidebar.display
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert not sidebar.display
        await send(pilot, "still works")
        assert len(replies(pilot)) == 1
        await pilot.press("ctrl+b")
        assert sidebar.display
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert sidebar.display
        await pilot.press("ctrl+b")
        assert not sidebar.display
    assert Settings.load().ui.show_sidebar is False
