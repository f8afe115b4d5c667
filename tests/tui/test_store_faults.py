"""The history under faults, in the app: a locked database, a full disk, two windows on
one conversation and rows damaged by hand. The keys keep working, nothing on screen is
lost, and what is stored ends up in the conversation's order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.context import ContextEntry, Role
from backends.runner import Runner
from tests.faults.test_disk_full import small_filesystem_available
from tests.store.lock_holder import LockHolder
from tests.store.test_integrity import damaged_history
from tests.support.openai_server import OpenAITestServer, Reply
from tests.tui.helpers import SIZE, chat, items, replies, send, type_text, wait_until
from tui.app import SpeziChatApp
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import ErrorItem, NoticeItem, UserMessage

ROOT = Path(__file__).resolve().parents[2]


async def test_a_locked_history_never_holds_up_the_keys_and_keeps_the_order(
    mock_settings: Settings, make_app: Callable[..., SpeziChatApp], store: Store
) -> None:
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(pilot)
        with LockHolder(store.path) as holder:
            await send(pilot, "Asked while locked")
            answer = replies(pilot)[-1].text
            assert answer
            await type_text(pilot, "typed on")
            # The keys acted, and the reply came, while the other process held the lock:
            # nothing could be written yet.
            assert screen.prompt.text == "typed on"
            assert holder.holding()
            assert screen.writer.pending > 0
            assert store.list_conversations() == []
        await wait_until(pilot, lambda: not screen.writer.pending, "saved after the lock")
        await wait_until(pilot, lambda: screen.sidebar.option_count == 1, "the sidebar")
    [conversation] = store.list_conversations()
    context = store.load_context(conversation.id)
    assert [(e.role, e.content) for e in context if e.role is not Role.SYSTEM] == [
        (Role.USER, "Asked while locked"),
        (Role.ASSISTANT, answer),
    ]


def test_a_full_disk_keeps_the_exchange_and_saves_it_later_in_order(tmp_path: Path) -> None:
    why = small_filesystem_available(tmp_path)
    if why is not None:
        pytest.skip(why)
    disk = tmp_path / "disk"
    disk.mkdir()
    script = 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$1" -m "$2" "$0"'
    worker = "tests.tui.store_disk_worker"
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, str(disk), sys.executable, worker],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])

    assert report["filler"] > 0  # the disk really was full
    # While full: the second exchange is on screen, not stored, and waits.
    assert report["stored_while_full"] == report["stored"][:2]
    assert report["stored_while_full"][0] == ["user", "First question"]
    # With room again, the next message took the waiting ones along, in order.
    stored = report["stored"]
    assert [role for role, _ in stored] == ["user", "assistant"] * 3
    assert [content for role, content in stored if role == "assistant"] == report["replies"]
    assert [content for role, content in stored if role == "user"] == [
        "First question",
        "Second question, disk full",
        "Third question",
    ]
    # The failure was shown once, saying what happens to the text; then that it was saved.
    [error] = report["errors"]
    assert error["description"] == "The conversation could not be saved: the disk is full."
    assert "as soon as there is room" in error["suggestion"]
    assert report["pending"] >= 1  # while full, the app knew what waited
    assert any(text.startswith("Saved the ") for text in report["notices"])


async def test_two_windows_on_one_conversation_keep_their_turns_apart(
    openai_settings: Settings,
    mock_settings: Settings,
    openai_server: OpenAITestServer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    with Store(path) as setup:
        shared = setup.create_conversation("Shared", "mock", "mock")
        setup.save_entry(shared.id, ContextEntry(Role.USER, "Hello"))
        setup.save_entry(shared.id, ContextEntry(Role.ASSISTANT, "Hi"))
    # A's request hangs until released (then drops before any text and is retried).
    openai_server.script(Reply(stall_after=0), Reply(text="Answer to A"))
    with Store(path) as store_a, Store(path) as store_b:
        app_a = SpeziChatApp(settings=openai_settings, store=store_a, runner=Runner())
        app_b = SpeziChatApp(settings=mock_settings, store=store_b, runner=Runner())
        async with app_a.run_test(size=SIZE) as pilot_a, app_b.run_test(size=SIZE) as pilot_b:
            window_a, window_b = chat(pilot_a), chat(pilot_b)
            assert window_a.conversation and window_a.conversation.id == shared.id
            assert window_b.conversation and window_b.conversation.id == shared.id
            await type_text(pilot_a, "Question from A")
            await pilot_a.press("enter")
            await wait_until(pilot_a, lambda: openai_server.chat_requests, "A's request")
            # While A waits for its answer, B asks and is answered.
            await send(pilot_b, "Question from B")
            answer_b = replies(pilot_b)[-1].text
            openai_server.release()
            await wait_until(pilot_a, lambda: not window_a.generating, "A's answer")
            assert replies(pilot_a)[-1].text == "Answer to A"
            # B learnt that A continued the conversation, and went on in a copy.
            fork = window_b.conversation
            assert fork is not None and fork.id != shared.id and fork.title == "Shared (fork)"
            notices = [item.text for item in items(pilot_b) if isinstance(item, NoticeItem)]
            assert any("continued in another window" in text for text in notices)
            # A's window learns of the conversation B's window created.
            await wait_until(
                pilot_a, lambda: window_a.sidebar.option_count == 2, "the copy in A's list"
            )
            assert window_a.sidebar.get_option(fork.id) is not None
            for window in (window_a, window_b):
                await wait_until(pilot_a, lambda w=window: not w.writer.pending, "saved")
        assert [e.content for e in store_a.load_context(shared.id)] == [
            "Hello",
            "Hi",
            "Question from A",
            "Answer to A",
        ]
        assert [e.content for e in store_a.load_context(fork.id)] == [
            "Hello",
            "Hi",
            "Question from B",
            answer_b,
        ]


async def test_the_app_starts_on_damaged_rows_and_names_the_conversation(
    mock_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "damaged.db"
    _, damaged = damaged_history(path)
    with Store(path) as again:
        app = SpeziChatApp(settings=mock_settings, store=again, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = chat(pilot)
            assert screen.conversation is not None and screen.conversation.id == damaged
            assert screen.sidebar.option_count == 2
            shown = [item.copy_text() for item in items(pilot)]
            assert "q1" in shown and "q3" in shown and "q2" not in shown
            [error] = [item.error for item in items(pilot) if isinstance(item, ErrorItem)]
            assert "“Damaged chat”" in error.description and damaged[:8] in error.description
            assert "unknown role 'wizard'" in error.reason
            await send(pilot, "Still usable?")
            assert isinstance(items(pilot)[-2], UserMessage) and replies(pilot)[-1].text
        context = again.load_context(damaged)
        assert [e.content for e in context][-2] == "Still usable?"
        with sqlite3.connect(path) as db:  # the damaged rows are left as they were
            roles = [row[0] for row in db.execute("SELECT role FROM entries")]
        assert "wizard" in roles
