"""History integrity: damaged rows, two windows on one conversation, a locked database.

Real parts only: rows damaged with raw SQL, two :class:`Store` instances (two windows)
on one file, another process holding the write lock (tests/store/lock_holder.py).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from backends.context import Context, ContextEntry, Role, ToolCall
from tests.store.lock_holder import LockHolder
from tui.cli import main
from tui.store import Conversation, Store, default_path
from tui.store_writer import Forked, StoreWriter, WriteFailed, WriterEvent, WritesResumed


def damaged_history(path: Path) -> tuple[str, str]:
    """A healthy conversation and a damaged one (the most recent); returns their ids."""
    with Store(path) as store:
        healthy = store.create_conversation("Healthy chat", "mock", "mock")
        context = Context()
        context.append_user("How are pancakes made?")
        context.append_assistant("Flour, eggs, milk.", complete=True)
        store.save_context(healthy.id, context)
        damaged = store.create_conversation("Damaged chat", "mock", "mock")
        context = Context.with_system(["Be brief."])
        context.append_user("q1")
        context.append_assistant("a1", complete=True)
        context.append_user("q2")
        context.append_tool_calls([ToolCall("call-1", "get_weather", '{"city": "Bern"}')])
        context.append_tool_result("call-1", "get_weather", "Sunny.")
        context.append_user("q3")
        context.append_assistant("a3", complete=True)
        store.save_context(damaged.id, context)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET created = 'yesterday noon' WHERE content = 'a1'")
        db.execute("UPDATE entries SET role = 'wizard' WHERE content = 'q2'")
        db.execute("UPDATE entries SET tool_calls = '{not json' WHERE tool_calls IS NOT NULL")
        db.execute("UPDATE entries SET content = ? WHERE content = 'a3'", (b"a3 \xff bytes",))
        db.execute(
            "UPDATE conversations SET updated = '9999-99-99 broken' WHERE id = ?", (damaged.id,)
        )
    return healthy.id, damaged.id


def test_damaged_rows_are_repaired_or_skipped_and_the_conversation_is_named(
    tmp_path: Path,
) -> None:
    healthy, damaged = damaged_history(tmp_path / "history.db")
    with Store(tmp_path / "history.db") as store:
        listed = store.list_conversations()
        assert {c.id for c in listed} == {healthy, damaged}
        context = store.load_context(damaged)
        shown = [(e.role, e.content) for e in context]
        assert shown == [
            (Role.SYSTEM, "Be brief."),
            (Role.USER, "q1"),
            (Role.ASSISTANT, "a1"),  # its bad timestamp replaced by the one before it
            # q2 (role 'wizard') is skipped
            (Role.ASSISTANT, ""),  # the tool-call entry, without its unreadable calls
            (Role.TOOL, "Sunny."),
            (Role.USER, "q3"),
            (Role.ASSISTANT, "a3 \ufffd bytes"),  # bytes decoded
        ]
        assert context.entries[2].created == context.entries[1].created
        problems = " | ".join(store.damage(damaged))
        assert "unknown role 'wizard'; skipped" in problems
        assert "invalid timestamp 'yesterday noon'" in problems
        assert "function calls are not valid JSON" in problems
        assert "stored as bytes; decoded" in problems
        assert "invalid updated time '9999-99-99 broken'" in problems
        report = store.damage_report(damaged)
        assert report is not None
        assert "“Damaged chat”" in report.description and damaged[:8] in report.description
        assert report.reason and report.suggestion
        # The healthy conversation is untouched and says nothing.
        assert next(e.content for e in store.load_context(healthy)) == "How are pancakes made?"
        assert store.damage_report(healthy) is None
        # Without loading anything: which conversations are damaged, and search still works.
        assert set(store.scan_damage()) == {damaged}
        assert [hit.conversation_id for hit in store.search("pancakes")] == [healthy]
        assert [hit.conversation_id for hit in store.search("bytes")] == [damaged]
        # The damaged conversation can be continued.
        more = context.append_user("q4")
        store.save_entry(damaged, more)
        assert store.load_context(damaged).entries[-1].content == "q4"


def test_history_list_and_show_work_and_name_the_damaged_conversation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    healthy, damaged = damaged_history(default_path())
    assert main(["history", "list"]) == 0
    captured = capsys.readouterr()
    assert healthy[:8] in captured.out and damaged[:8] in captured.out
    assert "Traceback" not in captured.err
    assert f"warning: Part of the conversation “Damaged chat” ({damaged[:8]})" in captured.err
    assert "unknown role 'wizard'" in captured.err
    assert healthy[:8] not in captured.err

    assert main(["history", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert damaged in captured.out and damaged[:8] in captured.err

    assert main(["history", "show", damaged[:8]]) == 0
    captured = capsys.readouterr()
    assert "q1" in captured.out and "q3" in captured.out and "a3 \ufffd bytes" in captured.out
    assert "wizard" not in captured.out
    assert f"({damaged[:8]}) could not be read" in captured.err

    assert main(["history", "show", healthy[:8]]) == 0
    assert capsys.readouterr().err == ""


def _window(store: Store) -> tuple[StoreWriter, list[WriterEvent]]:
    events: list[WriterEvent] = []
    return StoreWriter(store, events.append), events


def test_two_windows_on_one_conversation_keep_their_turns_apart(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with Store(path) as setup:
        shared = setup.create_conversation("Shared", "mock", "mock")
        context = Context()
        context.append_user("Hello")
        context.append_assistant("Hi", complete=True)
        setup.save_context(shared.id, context)
    with Store(path) as first, Store(path) as second:
        writer_a, events_a = _window(first)
        writer_b, events_b = _window(second)
        conversation = first.get_conversation(shared.id)
        assert conversation is not None
        context_a = first.load_context(shared.id)
        context_b = second.load_context(shared.id)
        # Both windows ask; A's question is stored first, then B's would follow it.
        question_a = context_a.append_user("Question from A")
        writer_a.save(conversation, context_a, question_a)
        question_b = context_b.append_user("Question from B")
        writer_b.save(conversation, context_b, question_b)
        answer_a = context_a.append_assistant("Answer to A", complete=True)
        writer_a.save(conversation, context_a, answer_a)
        answer_b = context_b.append_assistant("Answer to B", complete=False)
        writer_b.save(conversation, context_b, answer_b)
        answer_b.append_text(" (streamed on)")
        writer_b.save(conversation, context_b, answer_b)
        assert writer_a.wait_idle(60) and writer_b.wait_idle(60)

        assert [e.content for e in first.load_context(shared.id)] == [
            "Hello",
            "Hi",
            "Question from A",
            "Answer to A",
        ]
        assert not [event for event in events_a if isinstance(event, Forked)]
        [forked] = [event for event in events_b if isinstance(event, Forked)]
        assert forked.source_id == shared.id and forked.fork.title == "Shared (fork)"
        assert "another window" in forked.error.description
        assert writer_b.current(conversation) == forked.fork
        assert [e.content for e in second.load_context(forked.fork.id)] == [
            "Hello",
            "Hi",
            "Question from B",
            "Answer to B (streamed on)",
        ]
        writer_a.close()
        writer_b.close()


def test_writes_while_another_process_holds_the_lock_wait_in_order(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    events: list[WriterEvent] = []
    with Store(path) as store:
        writer = StoreWriter(store, events.append, retry_after=(0.2,))
        conversation = Store.new_conversation("Locked", "mock", "mock")
        context = Context()
        with LockHolder(path) as holder:
            writer.create(conversation)
            question = context.append_user("Asked while locked")
            writer.save(conversation, context, question)
            reply = context.append_assistant("Answered", complete=True)
            writer.save(conversation, context, reply)
            # Every call returned while the other process still holds the lock.
            assert holder.holding()
            assert writer.pending == 3
            assert store.list_conversations() == []  # reads do not wait either
        assert writer.wait_idle(60)
        assert [(e.role, e.content) for e in store.load_context(conversation.id)] == [
            (Role.USER, "Asked while locked"),
            (Role.ASSISTANT, "Answered"),
        ]
        assert writer.close() == 0
    # Held past the busy timeout, the write fails, is reported once and retried.
    failures = [event for event in events if isinstance(event, WriteFailed)]
    assert len(failures) <= 1
    if failures:
        assert any(isinstance(event, WritesResumed) for event in events)


def test_a_failed_write_waits_and_goes_first_with_the_next_one(tmp_path: Path) -> None:
    """SQLite refusing writes (``PRAGMA query_only``: "attempt to write a readonly
    database") stands in for any failure that goes away, on every machine; the real
    disk-full case runs in tests/tui/test_store_faults.py."""
    path = tmp_path / "history.db"
    events: list[WriterEvent] = []
    with Store(path) as store:
        writer = StoreWriter(store, events.append, retry_after=(3600,))
        conversation = store.create_conversation("Retry", "mock", "mock")
        context = Context()
        first = context.append_user("one")
        writer.save(conversation, context, first)
        store._db.execute("PRAGMA query_only = ON")  # every write now fails
        second = context.append_user("two")
        writer.save(conversation, context, second)
        third = context.append_assistant("three", complete=True)
        writer.save(conversation, context, third)
        assert writer.pending == 2
        [failed] = [event for event in events if isinstance(event, WriteFailed)]
        assert failed.pending == 1 and failed.error.reason
        store._db.execute("PRAGMA query_only = OFF")
        fourth = context.append_user("four")
        writer.save(conversation, context, fourth)  # the next write takes the others along
        assert writer.wait_idle(60)
        assert [e.content for e in store.load_context(conversation.id)] == [
            "one",
            "two",
            "three",
            "four",
        ]
        assert any(isinstance(event, WritesResumed) for event in events)
        writer.close()


def test_unsaved_changes_show_when_the_conversation_is_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with Store(path) as store:
        writer = StoreWriter(store, lambda event: None, retry_after=(3600,))
        conversation: Conversation = store.create_conversation("Overlay", "mock", "mock")
        context = Context()
        writer.save(conversation, context, context.append_user("saved"))
        store._db.execute("PRAGMA query_only = ON")
        writer.save(conversation, context, context.append_user("waiting"))
        reopened = writer.overlay(conversation.id, store.load_context(conversation.id))
        assert [e.content for e in reopened] == ["saved", "waiting"]
        store._db.execute("PRAGMA query_only = OFF")
        writer.retry()
        assert writer.wait_idle(60)
        writer.close()


def test_a_long_reply_is_saved_on_the_writer_thread_a_short_one_at_once(tmp_path: Path) -> None:
    """Saving megabytes (and indexing them for search) must not hold up the app's keys."""
    from tui.store_writer import QUICK_WRITE_CHARS

    with Store(tmp_path / "history.db") as store:
        conversation = store.create_conversation("Long", "mock", "mock")
        writer, _events = _window(store)
        threads: dict[str, int] = {}
        for method in ("save_entry", "append_entry"):
            original = getattr(store, method)

            def spy(
                conversation_id: str, entry: ContextEntry, *a: Any, _o: Any = original, **k: Any
            ) -> Any:
                threads[entry.content[:5]] = threading.get_ident()
                return _o(conversation_id, entry, *a, **k)

            setattr(store, method, spy)
        context = Context()
        short = context.append_user("short question")
        writer.save(conversation, context, short)
        long = context.append_assistant("longs" + "x" * QUICK_WRITE_CHARS, complete=True)
        writer.save(conversation, context, long)
        assert writer.wait_idle(timeout=30)
        writer.close(timeout=30)
        assert threads["short"] == threading.get_ident()
        assert threads["longs"] != threading.get_ident()
        assert [e.content for e in store.load_context(conversation.id)] == [
            short.content,
            long.content,
        ]
