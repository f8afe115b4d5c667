"""A new user's audit (issue #15), the chat screen: what they could not find, reach or read.

A search hit deep in a long reply, paging from the prompt, the footer at 80 columns,
the status bar's figures, Esc before the first token, code blocks, an empty chat and
the open conversation's name on a narrow terminal.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import OptionList

from backends.context import Context, Role
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, items, replies, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.screens.search import SearchScreen
from tui.settings import Settings
from tui.store import Store
from tui.widgets.code import CodeBlock, QuickFence
from tui.widgets.messages import AssistantMessage, UserMessage

_ROW = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>'
)
CELL = 12.2
"""Width of a cell in Textual's screenshots (SVG units)."""


def screen_rows(app: SpeziChatApp) -> list[str]:
    """The screen as text, one string per row, each character in its column."""
    size = app.size
    grid = [[" "] * (size.width + 4) for _ in range(size.height)]
    for x, row, text in _ROW.findall(app.export_screenshot()):
        column = round(float(x) / CELL)
        for offset, character in enumerate(html.unescape(text).replace("\xa0", " ")):
            if int(row) < size.height and column + offset < len(grid[0]):
                grid[int(row)][column + offset] = character
    return ["".join(line).rstrip() for line in grid]


def rows_of(app: SpeziChatApp, widget: Widget) -> list[str]:
    """The screen rows ``widget`` takes, cut to its columns."""
    region = widget.region
    rows = screen_rows(app)[region.y : region.bottom]
    return [row[region.x : region.right] for row in rows]


def store_conversation(store: Store, title: str, pairs: list[tuple[str, str]]) -> str:
    conversation = store.create_conversation(title, "openai", "gpt-test")
    context = Context.with_system(["Be brief."])
    for question, answer in pairs:
        context.append_user(question)
        context.append_assistant(answer, complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    return conversation.id


async def open_search_hit(pilot: Pilot[Any], word: str) -> None:
    app = pilot.app
    await pilot.press("ctrl+f")
    await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "the search")
    hits = app.screen.query_one("#hits", OptionList)
    await type_text(pilot, word)
    await wait_until(pilot, lambda: hits.option_count > 0, "a hit")
    await pilot.press("enter", "enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, SearchScreen), "the hit opened")


# 9. A search hit deep in a long reply --------------------------------------------------------
def _prose(match_at: int) -> str:
    return "\n\n".join(
        f"Paragraph {n} says something about the weather and the sea, at some length. "
        + ("The quokka smiles here. " if n == match_at else "")
        + "Nothing else happens in it."
        for n in range(90)
    )


def _code(lines: int, match_at: int) -> str:
    body = "\n".join(
        f"let value_{n} = {n};" + ("  // quokka" if n == match_at else "") for n in range(lines)
    )
    return f"Here it is:\n\n```rust\n{body}\n```\n\nThat was the file.\n"


@pytest.mark.parametrize(
    "reply",
    [_prose(match_at=50), _code(400, match_at=260), _code(1_500, match_at=900)],
    ids=["prose", "long code block", "boxed code block"],
)
async def test_a_search_hit_in_a_long_reply_shows_the_matching_line(
    reply: str, openai_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    store_conversation(store, "Long one", [("tell me a lot", reply), ("thanks", "You're welcome.")])
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await wait_until(pilot, lambda: len(replies(pilot)) == 2, "the conversation")
        await open_search_hit(pilot, "quokka")
        long_reply = replies(pilot)[0]
        assert app.focused is long_reply
        await wait_until(
            pilot,
            lambda: any("quokka" in row for row in rows_of(app, screen.log_view)),
            "the matching line on screen",
        )


# 10. Paging from the prompt ---------------------------------------------------------------
async def test_page_up_and_down_in_the_prompt_scroll_the_conversation(
    openai_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    store_conversation(store, "Paging", [(f"question {n}", _prose(-1)[:400]) for n in range(6)])
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        log = screen.log_view
        await wait_until(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y > 0, "the end")
        assert app.focused is screen.prompt
        bottom = log.scroll_y
        await pilot.press("pageup")
        await wait_until(pilot, lambda: log.scroll_y < bottom, "scrolled up a page")
        assert app.focused is screen.prompt and screen.prompt.text == ""
        await pilot.press("pagedown")
        await wait_until(pilot, lambda: log.scroll_y == bottom, "back at the end")


# 10 and 15. The footer at 80 columns ----------------------------------------------------------
def footer_row(app: SpeziChatApp) -> str:
    return screen_rows(app)[-1]


def assert_footer_whole(app: SpeziChatApp) -> str:
    row = footer_row(app)
    assert len(row) <= app.size.width, f"the footer runs past the screen: {row!r}"
    assert row.endswith("▏^p Commands"), f"a stray character at the right edge: {row!r}"
    keys = list(app.screen.query("FooterKey"))
    [palette] = [key for key in keys if key.has_class("-command-palette")]
    for key in keys:
        # Every key is drawn whole: none runs under the palette's key or off the screen.
        if key is not palette and key.display:
            assert key.region.right <= palette.region.x, f"an entry cut short: {row!r}"
    return row


async def test_the_footer_shows_the_useful_keys_whole_at_80_columns(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "hello")
        await pilot.pause()
        row = assert_footer_whole(app)
        for key in ("^n New", "^f Find", "^↑ Select", "^l Chats", "^b List", "f3 Model"):
            assert key in row, f"{key} missing from {row!r}"
        assert "^q Quit" in row and "f1 Help" in row
        await pilot.press("ctrl+up")  # a message: its own keys come first
        await wait_until(pilot, lambda: "c Copy" in footer_row(app), "the message's keys")
        row = assert_footer_whole(app)
        assert "b Code" in row and "esc Back" in row and "f1 Help" in row
        await pilot.press("ctrl+l")  # the conversation list
        await wait_until(pilot, lambda: "r Rename" in footer_row(app), "the list's keys")
        assert_footer_whole(app)


async def test_the_footer_fits_a_small_terminal(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=(40, 12)) as pilot:
        await send(pilot, "hello")
        await pilot.pause()
        row = assert_footer_whole(app)
        assert "f1 Help" in row


async def test_the_status_bar_ends_in_an_ellipsis_beside_the_sidebar(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    mock_settings.general.model = "a-model-whose-name-is-far-too-long-for-the-status-bar"
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await pilot.pause()
        assert screen.sidebar.display
        [status] = rows_of(app, screen.status)
        assert status.rstrip().endswith("…"), status


# 11. The status bar's figures ------------------------------------------------------------------
LONG = " ".join(f"word{i}" for i in range(400))


async def test_status_figures_after_a_stop_count_what_was_shown_and_reset_after(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    # 40 pieces of text (after the role chunk), then the server goes quiet.
    openai_server.script(
        Reply(text=LONG, chunk_size=4, stall_after=41),
        Reply(text=LONG, chunk_size=4, stall_after=3),
        Reply.api_error(400, "Bad request."),
    )
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        status = screen.status
        await type_text(pilot, "Tell me everything")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: replies(pilot) and len(replies(pilot)[0].copy_text()) == 160, "40 pieces"
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        assert status.usage is not None and status.usage[1] == 40 and status.estimated
        shown = str(status.render())
        assert "≈40 tokens" in shown and "+40" not in shown, shown
        # The next reply starts without the last one's figures.
        await type_text(pilot, "More")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(replies(pilot)) == 2, "the next reply")
        assert screen.generating and status.usage is None and status.speed is None
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        assert status.usage is not None
        # A new chat shows no figures.
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: screen.conversation is None, "a new chat")
        assert status.usage is None and status.speed is None
        # Nor does a reply that failed.
        await send(pilot, "Once more")
        assert status.state == "error"
        assert status.usage is None and status.speed is None
        assert "tokens" not in str(status.render())
    openai_server.release()


# 13. Esc before the first token -------------------------------------------------------------------
async def test_escape_before_the_first_token_shows_and_stores_a_stopped_reply(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    openai_server.script(Reply(hang=True))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Are you there?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(openai_server.chat_requests) == 1, "the request")
        assert screen.generating and replies(pilot) == []
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, "the reply stopped")
        await pilot.pause()
        user, reply = items(pilot)
        assert isinstance(user, UserMessage) and isinstance(reply, AssistantMessage)
        assert "stopped" in str(reply.query_one(".marker").render())
        assert screen.conversation is not None
        conversation_id = screen.conversation.id
        await wait_until(pilot, lambda: not screen.writer.pending, "the history written")
    openai_server.release()
    stored = list(store.load_context(conversation_id))
    assert [entry.role for entry in stored] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert stored[-1].content == "" and not stored[-1].complete
    assert stored[-1].finish_reason == "stopped"
    # Opened again, the reply shows the same mark.
    again = make_app(openai_settings)
    async with again.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(replies(pilot)) == 1, "the conversation")
        await pilot.pause()
        assert "stopped" in str(replies(pilot)[0].query_one(".marker").render())


# 18. Code blocks ---------------------------------------------------------------------------
def brightness_gap(widget: Widget, around: Widget) -> float:
    _, own = widget.background_colors
    _, other = around.background_colors
    return abs(own.brightness - other.brightness)


async def test_code_blocks_stand_out_and_name_their_language(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    short = (
        "Look:\n\n```python\nprint('hi')\n```\n\nAnd a [red]odd[/red] one:\n\n```[bold]x\nzz\n```\n"
    )
    openai_server.script(Reply(text=short, chunk_size=50), Reply(text=_code(200, -1)))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "show me code")
        reply = replies(pilot)[0]
        fence, odd = reply.query(QuickFence).results()
        paragraph = reply.body.segments[0]
        assert brightness_gap(fence, paragraph) > 0.05
        assert fence.border_title == "python"
        rows = rows_of(app, fence)
        assert "python" in rows[0] and "print('hi')" in "\n".join(rows[1:])
        # The label is the model's text: shown as it is, never as markup.
        assert "[bold]x" in rows_of(app, odd)[0]
        await send(pilot, "and a long file")
        reply = replies(pilot)[1]
        block = reply.query_one(CodeBlock)
        assert brightness_gap(block, reply.body.segments[0]) > 0.05
        assert block.border_title == "rust"
        chat(pilot).log_view.scroll_to_widget(block, top=True, animate=False)
        await wait_until(pilot, lambda: "rust" in rows_of(app, block)[0], "the label on screen")


# 20. An empty chat, and which conversation is open on a narrow terminal ------------------
def hint_text(pilot: Pilot[Any]) -> str:
    hints = chat(pilot).log_view.query("#empty-hint")
    return " ".join(rows_of(pilot.app, hints.first())) if hints else ""


async def test_a_new_chat_says_how_to_start(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp]
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Enter" in hint_text(pilot), "the hint")
        assert "F1" in hint_text(pilot) and "Ctrl+P" in hint_text(pilot)
        await send(pilot, "hello")
        assert hint_text(pilot) == ""
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: "Enter" in hint_text(pilot), "the hint again")


async def test_below_60_columns_the_open_conversations_title_shows(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    store_conversation(store, "Penguins of the south", [("hi", "hello")])
    app = make_app(mock_settings)
    async with app.run_test(size=(40, 12)) as pilot:
        screen = chat(pilot)
        await wait_until(pilot, lambda: len(replies(pilot)) == 1, "the conversation")
        await pilot.pause()
        assert not screen.sidebar.display
        assert any("Penguins of the south" in row for row in screen_rows(app))
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert any("New conversation" in row for row in screen_rows(app))
    wide = make_app(mock_settings)
    async with wide.run_test(size=(120, 40)) as pilot:
        screen = chat(pilot)
        await pilot.pause()
        # The list beside the chat names it there: no title bar.
        assert screen.sidebar.display
        assert not screen.query_one("#conversation-title").display
