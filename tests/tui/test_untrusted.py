"""Untrusted text in the app: control sequences never reach the terminal, markup never parses.

A hostile or broken server sends terminal control sequences (window title, clipboard
write, clear screen, cursor report) and Rich/Textual markup in replies, error bodies,
model ids and tool calls; a stored conversation has such a title. The app keeps running
and what it draws (the SVG screenshot: the very characters sent to the terminal) holds no
control character: ESC shows as ``␛``, brackets as typed. Stored text stays exact.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from textual.widgets import Input, OptionList

from backends.context import Context, Role
from backends.functions import llm_function
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall
from tests.tui.helpers import chat, items, replies, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.screens.dialogs import ToolApprovalDialog
from tui.screens.models import ModelPicker
from tui.screens.search import SearchScreen
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import AssistantMessage, ErrorItem, ToolCallItem

SIZE = (160, 40)
"""Wide enough that the texts checked below are not wrapped."""
# The apps run with notifications shown (Textual's tests leave them out): toasts are
# drawn, and a toast whose text parsed as markup would fail the test.
ESC = "\x1b"
HOSTILE = (
    f"Hi {ESC}]0;pwned-title\x07 clip {ESC}]52;c;aGVsbG8=\x07 "
    f"clear {ESC}[2J ask {ESC}[6n c1 \x9b31m bell\x07 [/] [bold]not bold[/bold] [/x] done"
)
"""OSC 0 (window title), OSC 52 (clipboard), CSI 2J (clear), CSI 6n (cursor report), C1 CSI."""


def controls(text: str) -> list[str]:
    """The C0 (but newline and tab), DEL and C1 characters in ``text``."""
    return [ch for ch in text if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) < 0xA0]


def assert_drawn_safely(app: SpeziChatApp) -> str:
    """The screen as the terminal would get it: no control character; returns the SVG."""
    svg = app.export_screenshot()
    assert controls(svg) == [], "control characters reached the screen"
    return svg


def shown(svg: str) -> str:
    """The screenshot's text, line by line (spaces as spaces, entities decoded)."""
    lines: dict[float, list[str]] = {}
    for y, text in re.findall(r'<text[^>]*\by="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        lines.setdefault(float(y), []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for _y, parts in sorted(lines.items()))


@llm_function
def lookup(city: str) -> str:
    """Look a city up.

    Args:
        city: Name of the city.
    """
    return f"Found {city}."


async def test_a_hostile_reply_is_drawn_neutralised_while_streaming_after_and_reopened(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    chunks = -(-len(HOSTILE) // 4)
    # The server sends the whole text, then stalls: the reply is drawn while it streams.
    openai_server.script(Reply(text=HOSTILE, chunk_size=4, stall_after=1 + chunks))
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: bool(replies(pilot)) and "done" in shown(app.export_screenshot()),
            "the whole reply drawn while it streams",
        )
        assert screen.generating
        svg = shown(assert_drawn_safely(app))
        assert "␛]0;pwned-title" in svg and "␛[2J" in svg and "␛[6n" in svg
        openai_server.release()  # the stream breaks off: an error, the reply kept
        await wait_until(pilot, lambda: not screen.generating, "the reply ended")
        await pilot.pause()
        reply = replies(pilot)[0]
        assert reply.text == HOSTILE  # the message keeps the exact text
        assert ESC not in reply.body.source
        svg = shown(assert_drawn_safely(app))
        assert "␛]52;c;aGVsbG8=" in svg and "[/] [bold]not bold[/bold] [/x] done" in svg
        # Copying puts what is shown on the clipboard, not the control sequences.
        reply.focus()
        await pilot.press("c")
        assert app.clipboard.startswith("Hi ␛]0;pwned-title␇ clip ␛]52;c;")
        assert controls(app.clipboard) == []
    [conversation] = store.list_conversations()
    stored = [e for e in store.load_context(conversation.id) if e.role is Role.ASSISTANT]
    assert stored[0].content == HOSTILE  # the store keeps the exact text

    # Reopened at the next start, the stored reply is drawn through the same path.
    again = make_app(openai_settings)
    async with again.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        [reply] = replies(pilot)
        await wait_until(pilot, lambda: "done" in shown(again.export_screenshot()), "reply drawn")
        svg = shown(assert_drawn_safely(again))
        assert "␛]0;pwned-title" in svg and "[/] [bold]not bold[/bold]" in svg
        assert reply.text == HOSTILE


async def test_an_error_body_with_control_sequences_and_markup_is_shown_as_text(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    openai_server.script(
        Reply.api_error(400, f"Bad {ESC}]52;c;aGVsbG8=\x07 request [/] for [fog] {ESC}[2J")
    )
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await send(pilot, "hello")
        assert any(isinstance(item, ErrorItem) for item in items(pilot))
        svg = shown(assert_drawn_safely(app))
        assert "␛]52;c;aGVsbG8=␇ request [/] for [fog] ␛[2J" in svg
        await send(pilot, "still here")  # the app keeps running
        assert len(replies(pilot)) == 1


async def test_model_ids_with_markup_and_controls_in_the_picker_and_after_choosing(
    make_app: Callable[..., SpeziChatApp],
    openai_settings: Settings,
    openai_server: OpenAITestServer,
) -> None:
    openai_server.models = ["evil[/]", f"llama{ESC}]0;x\x07[instruct]", "qwen2.5[instruct]"]
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f3")
        assert isinstance(app.screen, ModelPicker)
        view = app.screen.query_one("#model-list", OptionList)
        await wait_until(pilot, lambda: view.option_count == 3, "the model list")
        svg = shown(assert_drawn_safely(app))
        assert "evil[/]" in svg and "qwen2.5[instruct]" in svg and "llama␛]0;x␇[instruct]" in svg
        await type_text(pilot, "evil")  # the filter leaves evil[/]; Enter chooses it
        await wait_until(pilot, lambda: view.option_count == 1, "the filtered list")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is chat(pilot), "back in the chat")
        await pilot.pause()
        assert app.settings.general.model == "evil[/]"
        await wait_until(
            pilot, lambda: "Model: evil[/]" in shown(app.export_screenshot()), "the notice"
        )
        assert_drawn_safely(app)
        assert "evil[/]" in str(chat(pilot).status.render())
        openai_server.models.append("evil[/]")
        await send(pilot, "hi")  # the speaker label carries the id
        assert "Assistant · evil[/]" in shown(assert_drawn_safely(app))


async def test_a_stored_conversation_with_markup_and_controls_in_its_title_and_model(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    store: Store,
) -> None:
    title = f"what does [/] mean {ESC}]0;pwned\x07"
    conversation = store.create_conversation(title, "openai", "llama[/]x")
    context = Context.with_system(["Be brief."])
    context.append_user(f"axolotl question {ESC}[2J")
    context.append_assistant(f"axolotl answer {ESC}]52;c;aGk=\x07 [/]", complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    openai_settings.general.model = "llama[/]x"
    app = make_app(openai_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = chat(pilot)
        await pilot.pause()
        assert screen.conversation is not None and screen.conversation.id == conversation.id
        assert controls(screen.sub_title or "") == [] and "[/]" in (screen.sub_title or "")
        svg = shown(assert_drawn_safely(app))
        assert "what does [/] mean" in svg and "␛]0;pwned␇" in svg  # the sidebar (wrapped)
        assert "Assistant · llama[/]x" in svg and "llama[/]x" in str(screen.status.render())
        assert "axolotl answer ␛]52;c;aGk=␇ [/]" in svg and "axolotl question ␛[2J" in svg

        await pilot.press("ctrl+f")
        assert isinstance(app.screen, SearchScreen)
        await type_text(pilot, "axolotl")
        hits = app.screen.query_one("#hits", OptionList)
        await wait_until(pilot, lambda: hits.option_count == 2, "two hits")
        svg = shown(assert_drawn_safely(app))
        assert "what does [/] mean" in svg
        await pilot.press("escape")

        # Rename offers the title without control characters; the dialog is plain text.
        screen.sidebar.focus()
        await pilot.press("r")
        field = app.screen.query_one("#text", Input)
        assert field.value == "what does [/] mean ␛]0;pwned␇"
        assert_drawn_safely(app)
        await pilot.press("escape")
        # Delete asks with the title in its text.
        await pilot.press("d")
        assert "“what does [/] mean ␛]0;pwned␇”" in shown(assert_drawn_safely(app))
        await pilot.press("y")
        await wait_until(pilot, lambda: not store.list_conversations(), "deleted")
        await pilot.pause()
        assert "Deleted “what does [/] mean ␛]0;pwned␇”." in shown(assert_drawn_safely(app))


async def test_tool_call_arguments_and_results_are_drawn_neutralised(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
) -> None:
    city = f"Paris{ESC}]0;pwned\x07 [/]"
    openai_server.script(
        Reply(tool_calls=[ScriptedCall("lookup", {"city": city})]),
        Reply(text="It is there."),
    )
    app = make_app(openai_settings, tools=(lookup,))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "where?")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, ToolApprovalDialog), "the approval dialog"
        )
        await pilot.pause()
        # Arguments are shown as pretty JSON (which escapes controls itself); never markup.
        assert '"city": "Paris\\u001b]0;pwned\\u0007 [/]"' in shown(assert_drawn_safely(app))
        await pilot.click("#yes")  # a click answers at once (keys wait for a pause)
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        await pilot.pause()
        [tool] = [item for item in items(pilot) if isinstance(item, ToolCallItem)]
        assert tool.result == f"Found {city}."  # the exact result went back to the model
        svg = shown(assert_drawn_safely(app))
        assert "→ Found Paris␛]0;pwned␇ [/]." in svg
        assert isinstance(items(pilot)[-1], AssistantMessage)
