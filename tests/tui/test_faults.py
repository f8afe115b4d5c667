"""Faults the app must survive without losing anything or becoming unusable.

``kill -9`` of the real app (a separate process on a pseudo-terminal) in the middle of a
reply, a damaged history database, a 1 MB paste into the prompt and a terminal resized
to 40x12 while a long reply streams.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

from textual import events

from backends.context import Role
from backends.runner import Runner
from tests.support.openai_server import OpenAITestServer, Reply
from tests.support.terminal import terminal
from tests.tui.helpers import SIZE, chat, items, replies, send, type_text, wait_until
from tests.tui.test_render import document
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store, default_path
from tui.widgets.messages import DISPLAY_LIMIT, AssistantMessage, ErrorItem, UserMessage

STORY = " ".join(f"word{i}" for i in range(3000))


def _saved_reply(path: Path) -> tuple[str, str] | None:
    """The stored (question, partial reply) once the reply was saved, read like a reader."""
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            rows = db.execute("SELECT role, content FROM entries ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return None  # not created yet
    questions = [content for role, content in rows if role == "user"]
    answers = [content for role, content in rows if role == "assistant"]
    return (questions[-1], answers[-1]) if questions and answers and answers[-1] else None


async def test_kill_9_mid_reply_then_restart_keeps_the_question_and_the_partial_reply(
    openai_settings: Settings, openai_server: OpenAITestServer
) -> None:
    openai_settings.save()  # the real app reads config.toml (backend, model; key in the env)
    openai_server.script(Reply(text=STORY, chunk_size=6, delay=0.02))
    database = default_path()
    with terminal() as term:
        term.wait_for(lambda: "Message" in term.text(), "the chat screen")
        term.type("Tell me a long story")
        term.wait_for(lambda: "long story" in term.text(), "the typed text on screen")
        term.type("\r")
        # The app saves the streaming reply at least once a second.
        term.wait_for(
            lambda: (saved := _saved_reply(database)) is not None and len(saved[1]) > 200,
            "part of the reply in the database",
        )
        os.killpg(term.process.pid, signal.SIGKILL)
        term.process.wait()
        assert term.process.returncode == -signal.SIGKILL
    question, partial = _saved_reply(database) or ("", "")
    assert question == "Tell me a long story"
    assert STORY.startswith(partial) and len(partial) < len(STORY)

    # Restart: the conversation is back, the reply marked incomplete, and the chat goes on.
    openai_server.script(Reply(text="Where were we?"))
    with Store(database) as again:
        assert again.recovered_from is None and again.check() == []
        app = SpeziChatApp(settings=Settings.load(), store=again, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            user, reply = items(pilot)
            assert isinstance(user, UserMessage) and user.text == question
            assert isinstance(reply, AssistantMessage) and reply.text == partial
            assert "shown" in reply.query_one(".marker").classes
            await send(pilot, "Go on")
            assert replies(pilot)[-1].text == "Where were we?"
        entries = again.load_context(again.list_conversations()[0].id)
        assert [e.role for e in entries][-4:] == [Role.USER, Role.ASSISTANT] * 2
        assert entries.entries[-3].content == partial and not entries.entries[-3].complete


def test_the_real_app_starts_on_a_damaged_database_and_says_so(
    mock_settings: Settings,
) -> None:
    mock_settings.save()
    database = default_path()
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_bytes(b"this is not a database " * 100)
    with terminal() as term:
        term.wait_for(lambda: "damaged" in term.text(), "the damage reported on screen")
        term.wait_for(lambda: "Message" in term.text(), "the chat screen")
    kept = list(database.parent.glob("history.db.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"this is not a database " * 100


async def test_damaged_database_is_reported_kept_aside_and_replaced(
    mock_settings: Settings,
) -> None:
    garbage = b"\x00garbage\xff" * 4096
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(garbage)
    with Store.open_default() as store:  # what the app's entry point does
        assert store.recovered_from is not None
        assert store.recovered_from.read_bytes() == garbage
        app = SpeziChatApp(settings=mock_settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            error = next(item for item in items(pilot) if isinstance(item, ErrorItem))
            assert "damaged" in error.error.description
            assert str(store.recovered_from) in error.error.reason
            await send(pilot, "A fresh start")
            assert replies(pilot)[-1].text
    with Store.open_default() as reopened:
        assert reopened.recovered_from is None
        conversation = reopened.list_conversations()[0]
        assert reopened.load_context(conversation.id).entries[1].content == "A fresh start"


async def test_a_1_mb_paste_is_sent_whole_and_the_app_stays_usable(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    lines = "\n".join(f"log line {i}: " + "x" * 40 for i in range(10_000))
    blob = '{"data": "' + "y" * (2**20 - len(lines) - 13) + '"}'  # one long line
    pasted = lines + "\n" + blob
    assert len(pasted) == 2**20
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        app.post_message(events.Paste(pasted))  # as the terminal delivers a paste
        await wait_until(pilot, lambda: len(screen.prompt.text) >= len(pasted), "the paste")
        await type_text(pilot, " end")
        assert screen.prompt.text == pasted + " end"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.generating and replies(pilot), "the reply")
        user = next(item for item in items(pilot) if isinstance(item, UserMessage))
        assert user.copy_text() == pasted + " end"  # whole, though only the start is shown
        assert len(user.text) > DISPLAY_LIMIT
        assert screen.prompt.text == "" and screen.prompt.soft_wrap
        await send(pilot, "and a short one")
        assert len(replies(pilot)) == 2
    entries = store.load_context(store.list_conversations()[0].id).entries
    assert entries[1].content == pasted + " end"


async def test_resizing_to_40x12_while_a_long_reply_streams_loses_nothing(
    openai_settings: Settings,
    make_app: Callable[..., SpeziChatApp],
    openai_server: OpenAITestServer,
    store: Store,
) -> None:
    text = document(60, seed=3)
    openai_server.script(Reply(text=text, chunk_size=8, delay=0.002), Reply(text="Small."))
    app = make_app(openai_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(pilot)
        await type_text(pilot, "Long")
        await pilot.press("enter")
        await wait_until(pilot, lambda: replies(pilot) and replies(pilot)[0].streaming, "text")
        for size in ((40, 12), (100, 30), (40, 12)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
        await wait_until(pilot, lambda: not screen.generating, "the reply finished")
        await pilot.pause()
        reply = replies(pilot)[0]
        assert reply.text == text and reply.body.source == text
        log = screen.log_view
        assert log.size.width < 40 and not screen.sidebar.display
        await wait_until(
            pilot,
            lambda: all(s.built for s in reply.body.segments if s.region.overlaps(log.region)),
            "the visible part is drawn at the new width",
        )
        assert app.focused is screen.prompt
        await send(pilot, "ok?")
        assert replies(pilot)[-1].text == "Small."
    entries = store.load_context(store.list_conversations()[0].id).entries
    assert [e.content for e in entries if e.role is Role.ASSISTANT] == [text, "Small."]
