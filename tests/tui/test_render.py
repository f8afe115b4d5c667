"""Long replies drawn in segments: the split, the look, streaming and scrolling."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets.markdown import MarkdownBlock

from backends.context import Context
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import chat, replies, type_text, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.reply import ReplyBody, ReplyMarkdown, Segment
from tui.widgets.segments import Splitter, estimate_rows, split_markdown

_PROSE = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"
WORDS = _PROSE.split()


def document(blocks: int, seed: int = 1) -> str:
    """A reply with every kind of block a model writes, in a random order."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."

    out = []
    for index in range(blocks):
        kind = rng.choice(
            ["p", "p", "p", "h2", "h3", "list", "olist", "code", "tilde", "quote", "hr", "nested"]
        )
        if kind == "p":
            out.append(" ".join(sentence() for _ in range(rng.randint(1, 4))))
        elif kind == "h2":
            out.append(f"## Heading {index}")
        elif kind == "h3":
            out.append(f"### Smaller heading {index}")
        elif kind == "list":
            out.append("\n".join(f"- {sentence()}" for _ in range(rng.randint(2, 4))))
        elif kind == "olist":
            out.append("\n".join(f"{n}. {sentence()}" for n in range(1, rng.randint(3, 5))))
        elif kind == "code":
            # A blank line inside the fence must not end a segment.
            out.append("```python\ndef f():\n\n    return 1\n```")
        elif kind == "tilde":
            out.append("~~~~\nplain\n\n```\nnot the end\n~~~~")
        elif kind == "quote":
            out.append(f"> {sentence()}")
        elif kind == "hr":
            out.append("---")
        else:
            out.append(f"- {sentence()}\n\n  {sentence()}\n\n      indented code")
    return "\n\n".join(out) + "\n"


# The splitter ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_segments_join_to_the_text_whatever_the_piece_sizes(seed: int) -> None:
    text = document(80, seed)
    whole = split_markdown(text, target=300)
    assert "".join(whole) == text
    assert len(whole) > 5
    rng = random.Random(seed)
    splitter = Splitter(target=300)
    streamed: list[str] = []
    position = 0
    while position < len(text):
        size = rng.choice([1, 2, 3, 7, 40, 500])
        streamed += splitter.feed(text[position : position + size])
        position += size
        # What is drawn of the tail never holds a line that may still start a segment.
        assert ("".join(streamed) + splitter.tail) == text[: len("".join(streamed) + splitter.tail)]
    streamed.append(splitter.close())
    assert streamed == whole


def test_segments_end_only_at_safe_block_boundaries() -> None:
    from markdown_it import MarkdownIt

    text = document(120, seed=9)
    parts = split_markdown(text, target=200)
    fences = [
        token.map
        for token in MarkdownIt("gfm-like").parse(text)
        if token.type in ("fence", "code_block") and token.map
    ]
    line = 0
    for part, following in itertools.pairwise(parts):
        line += part.count("\n")
        assert part.endswith("\n\n"), "a segment ends with a blank line"
        first_line = following.split("\n", 1)[0]
        assert first_line and not first_line[0].isspace(), "no indented continuation"
        assert not first_line.startswith(("- ", "* ", "+ ")), "no list item"
        assert not first_line.split(" ", 1)[0].rstrip(".)").isdigit(), "no numbered item"
        assert len(part) >= 200
        assert not any(start < line < end for start, end in fences), "no cut in a code block"


def test_short_text_is_one_segment_and_a_fence_is_never_cut() -> None:
    assert split_markdown("Hello") == ["Hello"]
    assert split_markdown("") == [""]
    # (one longer than FENCE_LINES is cut: tests/tui/test_large_blocks.py)
    fence = "```\n" + "\n\n".join(f"line {i}" for i in range(70)) + "\n```\n"
    assert split_markdown(fence + "\nafter\n", target=50) == [fence + "\n", "after\n"]


def test_estimated_rows_grow_with_text_and_shrink_with_width() -> None:
    text = document(30, seed=3)
    assert estimate_rows(text, 40) > estimate_rows(text, 120) > estimate_rows("x", 120)


# The look: segments are spaced like one document ----------------------------------------------
class SideBySide(App[None]):
    """One Markdown widget beside the same text drawn in segments."""

    CSS = "#single { width: 1fr; height: auto; } VerticalScroll { width: 1fr; }"

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ReplyMarkdown(self.text, id="single")
            with VerticalScroll():
                yield ReplyBody(self.text)


def _block_rows(blocks: list[Widget], top: int) -> list[tuple[str, int, int]]:
    return [(type(block).__name__, block.region.y - top, block.region.height) for block in blocks]


async def test_segments_look_exactly_like_one_document() -> None:
    text = document(40, seed=5)
    assert len(split_markdown(text)) >= 3
    app = SideBySide(text)
    async with app.run_test(size=(160, 400)) as pilot:
        body = app.query_one(ReplyBody)
        await wait_until(
            pilot, lambda: all(s.built for s in body.segments), "every segment is built"
        )
        await pilot.pause()
        single = app.query_one("#single", ReplyMarkdown)
        assert single.size.height < 390, "the whole document fits the screen"
        segmented = [
            block
            for segment in body.segments
            if segment.markdown is not None
            for block in segment.markdown.children
            if isinstance(block, MarkdownBlock)
        ]
        expected = [b for b in single.children if isinstance(b, MarkdownBlock)]
        assert _block_rows(segmented, body.region.y) == _block_rows(expected, single.region.y)
        assert body.size.height == single.size.height


# Streaming and scrolling in the app ---------------------------------------------------------------
def _segments(pilot: Any) -> list[Segment]:
    return replies(pilot)[-1].body.segments


def _on_screen(pilot: Any, segment: Segment) -> bool:
    return segment.region.overlaps(chat(pilot).log_view.region)


async def test_a_long_streamed_reply_is_drawn_where_it_is_seen(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    text = document(160, seed=7)
    openai_server.script(Reply(text=text, chunk_size=11))
    app = make_app(openai_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await type_text(pilot, "Long please")
        await pilot.press("enter")
        screen = chat(pilot)
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        await pilot.pause()
        reply = replies(pilot)[-1]
        assert reply.text == text and reply.body.source == text
        assert reply.copy_text() == text
        segments = _segments(pilot)
        for segment in segments:
            if segment.markdown is not None:
                assert segment.markdown.source == segment.text  # drawn in full
        assert all(s.built for s in segments if _on_screen(pilot, s)), "the screen is drawn"
        unbuilt = [s for s in segments if not s.built]
        assert unbuilt and sum(len(s.text) for s in unbuilt) > len(text) // 2
        # Scrolling to the top draws the start; parts far below give up their widgets.
        log = screen.log_view
        log.scroll_home(animate=False)
        await wait_until(
            pilot,
            lambda: (
                log.scroll_y == 0
                and _segments(pilot)[0].built
                and all(s.built for s in _segments(pilot) if _on_screen(pilot, s))
            ),
            "the top of the reply is drawn",
        )
        first_block = _segments(pilot)[0].markdown
        assert first_block is not None and first_block.source.startswith(text[:20])
        await wait_until(
            pilot, lambda: not _segments(pilot)[-1].built, "the bottom gave up its widgets"
        )
        assert replies(pilot)[-1].body.source == text  # nothing is lost by that
    stored = store.load_context(store.list_conversations()[0].id)
    assert stored.entries[-1].content == text and stored.entries[-1].complete


async def test_a_long_stored_reply_opens_with_only_its_end_drawn(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    text = document(200, seed=11)
    conversation = store.create_conversation("Long", "mock", "mock")
    context = Context.with_system([])
    context.append_user("Tell me everything")
    context.append_assistant(text, complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    app = make_app(mock_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(
            pilot,
            lambda: (
                replies(pilot) and all(s.built for s in _segments(pilot) if _on_screen(pilot, s))
            ),
            "the visible part is drawn",
        )
        segments = _segments(pilot)
        assert segments[-1].built
        built = sum(len(s.text) for s in segments if s.built)
        assert built < len(text) // 3, "most of the reply waits until it is scrolled to"
        assert replies(pilot)[-1].body.source == text


def test_code_blocks_never_make_pygments_search_for_their_language() -> None:
    from tui.widgets.reply import QuickFence

    code = "def f(x):\n    return x  # comment\n"
    plain = QuickFence.highlight(code, "text")
    assert QuickFence.highlight(code, "").spans == plain.spans  # no guessing
    assert QuickFence.highlight(code, "no-such-language").spans == plain.spans  # no plugins
    assert QuickFence.highlight(code, "pyth").spans == plain.spans  # a name still streaming
    python = QuickFence.highlight(code, "Python title=example.py")
    assert len(python.spans) > len(plain.spans)  # known languages are highlighted
