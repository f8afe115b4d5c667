"""Very large code blocks (issue 13): drawn line by line, so the app stays responsive.

A reply with a 200,000-line code block used to make one Markdown widget 200,000 rows
tall: every key laid it out again (seconds), memory grew with it, and so after every
restart. Now a long code block is cut off the Markdown and drawn as a line-by-line view;
past BOX_LINES lines it is a box that scrolls inside. The tests check it structurally:
what the conversation lays out stays proportional to the screen, keys are processed,
copying the code gives it back exactly, streamed or reopened from the history.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

from backends.context import Context
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, replies, type_text, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import AssistantMessage, code_blocks
from tui.widgets.reply import ReplyBody, ReplyMarkdown
from tui.widgets.segments import Splitter, split_markdown

HUGE = 200_000

_CODE = [
    "def fetch(url: str, retries: int = 3) -> bytes:",
    '    """Download ``url``, retrying on transient errors."""',
    "    for attempt in range(retries):",
    "",
    "        try:",
    "\twith urlopen(url, timeout=10) as response:  # a tab",
    "                return response.read()",
    "        except OSError as exc:",
    '            log.warning("attempt %d failed: %s", attempt, exc)',
    "    ```not a closing line",
    "    raise RuntimeError(f'giving up on {url}')",
]


def code_of(lines: int) -> str:
    """``lines`` lines of Python, each numbered (so any line can be recognised)."""
    return "".join(f"{_CODE[i % len(_CODE)]}  # {i}\n" for i in range(lines))


def reply_with_block(lines: int, fence: str = "```") -> str:
    return f"Here is the file:\n\n{fence}python\n{code_of(lines)}{fence}\n\nThat is all of it.\n"


SLOW_S = 150
"""The safety net of these waits: drawing 20,000 lines takes a while on a busy machine."""


# The split -------------------------------------------------------------------------------
def test_a_long_code_block_is_cut_off_the_markdown_and_into_parts() -> None:
    text = "Intro.\n\n" + reply_with_block(1000, fence="~~~~") + "\n```\nshort\n```\n"
    parts = split_markdown(text)
    assert "".join(parts) == text
    kinds = [type(part).__name__ for part in parts]
    first = kinds.index("Part")
    last = len(kinds) - 1 - kinds[::-1].index("Part")
    assert set(kinds[first : last + 1]) == {"Part"} and "Part" not in kinds[last + 1 :]
    code = parts[first : last + 1]
    assert code[0].startswith("~~~~python\n") and code[-1].endswith("~~~~\n")
    assert parts[first - 1].endswith("Here is the file:\n\n"), "the text before is cut off"
    flags = [(getattr(p, "continued", None), getattr(p, "continues", None)) for p in code]
    assert flags == [(False, True)] + [(True, True)] * (len(code) - 2) + [(True, False)]
    assert all(part.count("\n") <= 151 for part in code), "parts of bounded size"
    assert "short" in parts[-1], "a short code block stays Markdown"
    # Streamed in pieces of any size, the same parts (and kinds) come out.
    rng = random.Random(3)
    splitter = Splitter()
    streamed: list[str] = []
    position = 0
    while position < len(text):
        size = rng.choice([1, 2, 5, 40, 700])
        streamed += splitter.feed(text[position : position + size])
        position += size
    streamed.append(splitter.close())
    assert streamed == parts
    assert [type(part) for part in streamed] == [type(part) for part in parts]
    # Only a long block opened at the start of a line: a shorter one or one in a list
    # item stays Markdown.
    assert all(type(part) is str for part in split_markdown(reply_with_block(100)))
    indented = "- item\n\n  ```\n" + code_of(400) + "  ```\n"
    assert "".join(split_markdown(indented)) == indented
    assert all(type(part) is str for part in split_markdown(indented))


# The look ---------------------------------------------------------------------------------
class SideBySide(App[None]):
    CSS = "#single { width: 1fr; height: auto; } VerticalScroll { width: 1fr; }"

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ReplyMarkdown(self.text, id="single")
            with VerticalScroll():
                yield ReplyBody(self.text)


def _code_widget(body: ReplyBody) -> Widget:
    widgets = [child for child in body.children if type(child).__name__ == "CodeBlock"]
    assert len(widgets) == 1, "the long code block is drawn line by line"
    return widgets[0]


async def test_a_long_code_block_takes_the_place_of_the_markdown_one() -> None:
    text = reply_with_block(300)
    code = code_blocks(text)[0].rstrip("\n").split("\n")
    app = SideBySide(text)
    async with app.run_test(size=(160, 400)) as pilot:
        body = app.query_one(ReplyBody)
        await wait_until(
            pilot, lambda: all(s.built for s in body.segments), "the reply is drawn", limit_s=SLOW_S
        )
        await pilot.pause()
        single = app.query_one("#single", ReplyMarkdown)
        fence = single.query_one(MarkdownFence)
        block = _code_widget(body)
        assert body.source == text
        # Same rows: the block where the fence is, as tall; what follows as far down.
        assert (block.region.y - body.region.y, block.outer_size.height) == (
            fence.region.y - single.region.y,
            fence.outer_size.height,
        )
        assert body.size.height == single.size.height
        last = [b for s in body.segments if s.markdown for b in s.markdown.query(MarkdownBlock)]
        assert last[-1].region.y - body.region.y == (
            list(single.query(MarkdownBlock))[-1].region.y - single.region.y
        )
        # The lines drawn are the code's (tabs expanded, as the Markdown does).
        shown = [block.render_line(y).text.rstrip() for y in range(300)]
        assert shown == [line.expandtabs(8).rstrip() for line in code]


class Streamed(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield ReplyBody()


@pytest.mark.parametrize("seed", range(2))
async def test_long_code_blocks_streamed_in_any_pieces_are_drawn_whole(seed: int) -> None:
    text = (
        f"```python\n{code_of(400)}```\nRight after the block.\n\nSome text.\n\n"
        f"~~~\n{code_of(300)}~~~\n\n```\n{code_of(200)}"  # the last one never closes
    )
    rng = random.Random(seed)
    app = Streamed()
    async with app.run_test(size=(100, 30)) as pilot:
        body = app.query_one(ReplyBody)
        position = 0
        while position < len(text):
            size = rng.choice([1, 3, 20, 300, 2000])
            body.write(text[position : position + size])
            position += size
            if rng.random() < 0.3:
                await pilot.pause()
        await body.finish(text)
        await pilot.pause()
        assert body.source == text
        blocks: list[Any] = [c for c in body.children if type(c).__name__ == "CodeBlock"]
        assert len(blocks) == 3 and body.children[0] is blocks[0]
        assert blocks[0].has_class("-first") and not blocks[1].has_class("-first")
        expected = code_blocks(text)
        assert len(expected) == 3
        for block, code in zip(blocks, expected, strict=True):
            lines = [block.code_line(i) for i in range(block.line_count)]
            assert "\n".join(lines) + "\n" == code
        assert "Right after the block." in body.segments[0].text


# In the app ------------------------------------------------------------------------------
def _check_reply(pilot: Pilot[Any], text: str) -> AssistantMessage:
    """The reply is whole and its layout is proportional to the screen, not to the block."""
    reply = replies(pilot)[-1]
    assert reply.text == text and reply.body.source == text
    screen_rows = SIZE[1]
    assert reply.outer_size.height < 3 * screen_rows, "as tall as a few screens at most"
    assert len(list(reply.query("*"))) < 100, "a bounded number of widgets"
    block = _code_widget(reply.body)
    assert block.outer_size.height <= screen_rows
    assert block.text.count("\n") == HUGE + 2  # opening and closing lines, all of the code
    return reply


async def _keys_work(pilot: Pilot[Any], reply: AssistantMessage, text: str) -> None:
    screen = chat(pilot)
    await pilot.press("ctrl+up")
    assert pilot.app.focused is reply
    await pilot.press("b")
    assert pilot.app.clipboard == code_blocks(text)[0] == code_of(HUGE)
    await pilot.press("escape")
    assert pilot.app.focused is screen.prompt
    await type_text(pilot, "ok")
    assert screen.prompt.text == "ok"


async def _scroll_inside(pilot: Pilot[Any], reply: AssistantMessage) -> None:
    block: Any = _code_widget(reply.body)
    block.scroll_to(y=123_456, animate=False, immediate=True)
    await pilot.pause()
    assert block.render_line(0).text.rstrip().endswith("# 123456")


async def test_a_streamed_reply_with_a_huge_code_block_keeps_the_app_responsive(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    text = reply_with_block(HUGE)
    openai_server.script(Reply(text=text, chunk_size=8192))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "The whole file please")
        await pilot.press("enter")
        await wait_until(pilot, lambda: replies(pilot), "the reply started", limit_s=SLOW_S)
        # While it streams (or once it is whole) the reply stays a few screens tall.
        await wait_until(
            pilot,
            lambda: replies(pilot)[-1].body.source.count("\n") > 20_000,
            "20,000 lines drawn",
            limit_s=SLOW_S,
        )
        await pilot.pause()
        assert replies(pilot)[-1].outer_size.height < 3 * SIZE[1]
        await wait_until(pilot, lambda: not screen.generating, "the reply finished", limit_s=SLOW_S)
        await pilot.pause()
        reply = _check_reply(pilot, text)
        await _keys_work(pilot, reply, text)
        await _scroll_inside(pilot, reply)
    stored = store.load_context(store.list_conversations()[0].id)
    assert stored.entries[-1].content == text


async def test_a_stored_reply_with_a_huge_code_block_reopens_the_same_way(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    text = reply_with_block(HUGE)
    conversation = store.create_conversation("A file", "mock", "mock")
    context = Context.with_system([])
    context.append_user("The whole file please")
    context.append_assistant(text, complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: replies(pilot), "the conversation shown", limit_s=SLOW_S)
        await pilot.pause()
        reply = _check_reply(pilot, text)
        await _keys_work(pilot, reply, text)
        await _scroll_inside(pilot, reply)
