"""The history store on real SQLite files: lossless entries, order, conversations, search."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from backends.context import Context, ContextEntry, Role, ToolCall
from tui.store import (
    MIGRATIONS,
    Autosaver,
    ConversationNotFoundError,
    Store,
    StoreError,
    default_path,
    title_from_text,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "history.db") as opened:
        yield opened


def rich_context() -> Context:
    """Every kind of entry and field the context can hold."""
    context = Context.with_system(["Be brief.", "Answer in English."])
    context.append_user("What's the weather in Zürich? «quotes» and emoji 🌦")
    context.append_assistant("Let me check", complete=False)
    context.append_tool_calls(
        [
            ToolCall("call_1", "get_weather", '{"city": "Zürich"}'),
            ToolCall("call_2", "get_time", "{}"),
        ]
    )
    context.append_tool_result("call_1", "get_weather", '{"temp": 21}')
    context.append_tool_result("call_2", "get_time", "12:00")
    context.append_assistant("It is **21 °C** at noon.\n\n```\ncode\n```", complete=True)
    context.append_user("And tomorrow?")
    context.append_assistant("Tomorrow it", complete=False)
    context.mark_interrupted("stopped")
    naive = ContextEntry(Role.USER, "naive time", created=datetime(2020, 1, 2, 3, 4, 5))
    context.entries.append(naive)
    return context


def test_opens_in_wal_mode_with_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "history.db"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 1
    db.close()


def test_older_schema_is_migrated_in_place_keeping_the_data(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)  # a database as the first released version left it
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO conversations VALUES ('ab12', 'old', 'mock', 'm', ?, ?)",
        ("2024-01-01T00:00:00.000000+00:00", "2024-01-01T00:00:00.000000+00:00"),
    )
    db.execute(
        "INSERT INTO entries (conversation_id, id, position, role, content, complete, created)"
        " VALUES ('ab12', 'e1', 0, 'user', 'kept across upgrades', 1, ?)",
        ("2024-01-01T00:00:00+00:00",),
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert [c.title for c in store.list_conversations()] == ["old"]
        assert store.load_context("ab12")[0].content == "kept across upgrades"
        assert [h.entry_id for h in store.search("upgrades")] == ["e1"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "entries_role" in indexes
    db.close()


def test_importing_the_store_loads_no_textual() -> None:
    code = "import sys, tui.store, tui.export; print(*sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert "tui" in loaded, "the probe did not import the store"
    assert "textual" not in loaded


def test_default_path_is_under_the_xdg_data_dir(isolated_dirs: Path) -> None:
    assert default_path() == isolated_dirs / "xdg_data_home" / "spezichat" / "history.db"
    with Store.open_default() as store:
        assert store.path == default_path()
    assert default_path().exists()


def test_context_round_trips_losslessly(store: Store) -> None:
    conversation = store.create_conversation("Weather", "mock", "mock")
    context = rich_context()
    for entry in context:
        store.save_entry(conversation.id, entry)
    loaded = store.load_context(conversation.id)
    assert loaded.to_list() == context.to_list()
    assert loaded.to_messages() == context.to_messages()
    stopped = loaded[-2]
    assert (stopped.complete, stopped.finish_reason) == (False, "stopped")
    assert loaded[3].tool_calls[0] == ToolCall("call_1", "get_weather", '{"city": "Zürich"}')
    # And it survives closing and reopening the file.
    store.close()
    with Store(store.path) as again:
        assert again.load_context(conversation.id).to_list() == context.to_list()


def test_save_entry_upserts_and_keeps_the_position(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    user = ContextEntry(Role.USER, "hi")
    reply = ContextEntry(Role.ASSISTANT, "", complete=False)
    store.save_entry(conversation.id, user)
    store.save_entry(conversation.id, reply)
    for word in ("Hel", "lo", " there"):
        reply.append_text(word)
        store.save_entry(conversation.id, reply)
    store.save_entry(conversation.id, user)  # saving an earlier entry again keeps its place
    reply.complete, reply.finish_reason = True, "stop"
    store.save_entry(conversation.id, reply)
    loaded = store.load_context(conversation.id)
    assert [(e.id, e.content, e.complete) for e in loaded] == [
        (user.id, "hi", True),
        (reply.id, "Hello there", True),
    ]


def test_unchanged_save_does_not_touch_updated(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    entry = ContextEntry(Role.USER, "hi")
    store.save_entry(conversation.id, entry)
    before = store.get_conversation(conversation.id)
    store.save_entry(conversation.id, entry)
    assert store.get_conversation(conversation.id) == before
    entry.content = "hi!"
    store.save_entry(conversation.id, entry)
    after = store.get_conversation(conversation.id)
    assert after is not None and before is not None and after.updated > before.updated


def test_same_entry_ids_in_two_conversations_stay_apart(store: Store) -> None:
    first = store.create_conversation("one", "mock", "m")
    second = store.create_conversation("two", "mock", "m")
    context = Context()
    context.append_user("shared start")
    for entry in context:
        store.save_entry(first.id, entry)
    fork = context.copy()  # same entry ids
    fork.append_user("only in the fork")
    for entry in fork:
        store.save_entry(second.id, entry)
    assert len(store.load_context(first.id)) == 1
    assert len(store.load_context(second.id)) == 2


def test_list_conversations_most_recent_first_with_counts(store: Store) -> None:
    old = store.create_conversation("old", "openai", "gpt-4o-mini")
    new = store.create_conversation("new", "local", "gemma")
    assert [c.id for c in store.list_conversations()] == [new.id, old.id]
    for entry in Context.with_system(["sys"]):
        store.save_entry(old.id, entry)
    store.save_entry(old.id, ContextEntry(Role.USER, "bump"))
    listed = store.list_conversations()
    assert [c.id for c in listed] == [old.id, new.id]
    assert [c.message_count for c in listed] == [1, 0]  # system prompts are not counted
    assert listed[0].backend == "openai" and listed[0].model == "gpt-4o-mini"
    assert listed[0].created.tzinfo is not None
    assert listed[0].updated >= listed[0].created
    assert [c.id for c in store.list_conversations(limit=1)] == [old.id]


def test_get_rename_delete(store: Store) -> None:
    conversation = store.create_conversation("first", "mock", "m")
    assert store.get_conversation(conversation.id) == conversation
    assert store.get_conversation("nope") is None
    store.rename_conversation(conversation.id, "renamed")
    renamed = store.get_conversation(conversation.id)
    assert renamed is not None and renamed.title == "renamed"
    store.save_entry(conversation.id, ContextEntry(Role.USER, "findable needle"))
    assert store.search("needle")
    store.delete_conversation(conversation.id)
    assert store.get_conversation(conversation.id) is None
    assert store.list_conversations() == []
    assert store.search("needle") == []
    store.delete_conversation(conversation.id)  # already gone: no error
    assert store.check() == []


def test_missing_conversation_errors_say_what_to_do(store: Store) -> None:
    with pytest.raises(ConversationNotFoundError) as caught:
        store.save_entry("gone", ContextEntry(Role.USER, "typed text"))
    assert "deleted" in caught.value.reason and caught.value.suggestion
    with pytest.raises(ConversationNotFoundError):
        store.load_context("gone")
    with pytest.raises(ConversationNotFoundError):
        store.rename_conversation("gone", "x")
    with pytest.raises(ConversationNotFoundError):
        store.save_context("gone", Context())


def test_delete_entries_for_retry(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    context = Context()
    context.append_user("question")
    context.append_assistant("bad answer", complete=True)
    for entry in context:
        store.save_entry(conversation.id, entry)
    removed = context.remove_last_reply()
    store.delete_entries(conversation.id, [e.id for e in removed] + ["not-stored"])
    retry = context.append_assistant("good answer", complete=True)
    store.save_entry(conversation.id, retry)
    loaded = store.load_context(conversation.id)
    assert [e.content for e in loaded] == ["question", "good answer"]
    assert store.search("bad") == []
    assert [h.entry_id for h in store.search("good")] == [retry.id]


def test_save_context_mirrors_inserts_replacements_and_order(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    context = Context()
    context.append_user("weather?")
    streaming = context.append_assistant("Checking", complete=False)
    store.save_context(conversation.id, context)
    # The tool call replaces the streaming entry with a new one; a system prompt is
    # inserted at the top afterwards.
    context.append_tool_calls([ToolCall("c1", "weather", "{}")])
    context.append_tool_result("c1", "weather", "sunny")
    context.append_system("Be brief.")
    store.save_context(conversation.id, context)
    loaded = store.load_context(conversation.id)
    assert loaded.to_list() == context.to_list()
    assert streaming.id not in {e.id for e in loaded}
    assert loaded[0].role is Role.SYSTEM
    # New entries saved one by one still go to the end.
    last = context.append_user("thanks")
    store.save_entry(conversation.id, last)
    assert store.load_context(conversation.id).to_list() == context.to_list()


def test_search_across_conversations(store: Store) -> None:
    first = store.create_conversation("Fog nodes", "fog", "llama3")
    second = store.create_conversation("Cooking", "mock", "m")
    store.save_entry(first.id, ContextEntry(Role.SYSTEM, "You explain fog computing."))
    store.save_entry(first.id, ContextEntry(Role.USER, "What is a fog node?"))
    answer = ContextEntry(
        Role.ASSISTANT,
        "A fog node is a server on your local network.\n\nIt runs models close to you.",
    )
    store.save_entry(first.id, answer)
    store.save_entry(second.id, ContextEntry(Role.USER, "Is the café open? Crème brûlée"))
    hits = store.search("local network")
    assert [(h.conversation_id, h.entry_id, h.role) for h in hits] == [
        (first.id, answer.id, Role.ASSISTANT)
    ]
    assert hits[0].conversation_title == "Fog nodes"
    assert "**local** **network**" in hits[0].snippet
    assert "\n" not in hits[0].snippet
    assert hits[0].created == answer.created
    assert store.search("fog", mark=("<", ">"))[0].snippet.count("<fog>") >= 1
    # Stemming and diacritics: "nodes" finds "node", "cafe" finds "café".
    assert {h.conversation_id for h in store.search("nodes")} == {first.id}
    assert [h.conversation_id for h in store.search("cafe creme")] == [second.id]
    assert {h.conversation_id for h in store.search("fog OR cafe")} == {first.id, second.id}
    assert store.search("comput*") == []  # system prompts are not searched
    assert store.search("   ") == []
    assert len(store.search("fog", limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"unbalanced', True),
        ("fog-node", True),
        ("a:b", True),
        ("NOT", True),
        ("node AND", True),
        ("^x", True),  # valid FTS5: "x" as the first word
        ("(", False),  # punctuation only: no word to look for
        ("*", False),
        ("'", False),
        ('""', False),
    ],
)
def test_invalid_search_syntax_falls_back_to_a_literal_phrase(
    store: Store, query: str, found: bool
) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    entry = ContextEntry(Role.USER, 'x marks the fog node: a:b, "unbalanced" quotes, node and not')
    store.save_entry(conversation.id, entry)
    # Words of the phrases in another order: only a phrase search leaves this one out.
    store.save_entry(conversation.id, ContextEntry(Role.ASSISTANT, "node fog, b a, and node"))
    hits = store.search(query)
    assert [hit.entry_id for hit in hits] == ([entry.id] if found else [])


def test_invalid_search_syntax_still_finds_the_literal_text(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    entry = ContextEntry(Role.USER, 'she said "unbalanced quotes" and fog-node things')
    store.save_entry(conversation.id, entry)
    assert [h.entry_id for h in store.search('"unbalanced')] == [entry.id]
    assert [h.entry_id for h in store.search("fog-node")] == [entry.id]


def test_search_index_follows_streaming_updates(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    reply = ContextEntry(Role.ASSISTANT, "first draft", complete=False)
    store.save_entry(conversation.id, reply)
    reply.content = "final version"
    store.save_entry(conversation.id, reply)
    assert store.search("draft") == []
    assert len(store.search("final")) == 1
    assert store.check() == []


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert "newer spezichat" in caught.value.description
    assert "Upgrade" in caught.value.suggestion
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


def test_garbage_file_is_moved_aside_and_a_fresh_store_works(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    with Store(path) as store:
        assert store.recovered_from is not None
        assert store.recovered_from.parent == tmp_path
        assert store.recovered_from.name.startswith("history.db.corrupt-")
        assert store.recovered_from.read_bytes() == garbage  # kept, untouched
        notice = store.recovery_notice
        assert notice is not None
        assert "damaged" in notice.description
        assert str(store.recovered_from) in notice.reason
        assert "not a database" in notice.reason
        assert ".recover" in notice.suggestion
        conversation = store.create_conversation("fresh", "mock", "m")
        store.save_entry(conversation.id, ContextEntry(Role.USER, "works again"))
    with Store(path) as again:
        assert again.recovered_from is None and again.recovery_notice is None
        assert [c.title for c in again.list_conversations()] == ["fresh"]


def test_damaged_pages_are_detected_and_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with Store(path) as store:
        for number in range(20):
            conversation = store.create_conversation(f"c{number}", "mock", "m")
            for _ in range(10):
                store.save_entry(conversation.id, ContextEntry(Role.USER, "text " * 100))
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 6] = b"\xab" * (4096 * 3)  # header intact, pages destroyed
    path.write_bytes(bytes(data))
    with Store(path) as store:
        assert store.recovered_from is not None
        assert store.recovered_from.read_bytes() == bytes(data)
        assert "malformed" in (store.recovery_reason or "")
        assert store.list_conversations() == []
        assert store.check() == []


def test_unreadable_location_is_a_clear_error_not_a_recovery(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        Store(blocker / "history.db")
    assert caught.value.reason and caught.value.suggestion
    directory = tmp_path / "history.db"
    directory.mkdir()  # a folder where the file should be
    with pytest.raises(StoreError):
        Store(directory)
    assert directory.is_dir() and not list(tmp_path.glob("*corrupt*"))


def test_threads_share_one_store(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for index in range(25):
                store.save_entry(conversation.id, ContextEntry(Role.USER, f"t{number} {index}"))
                store.search(f"t{number}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = store.load_context(conversation.id)
    assert len(loaded) == 100
    assert len({e.id for e in loaded}) == 100


def test_autosaver_saves_first_update_then_waits_for_the_interval(store: Store) -> None:
    conversation = store.create_conversation("t", "mock", "m")
    reply = ContextEntry(Role.ASSISTANT, "", complete=False)
    saver = Autosaver(store, conversation.id, interval=3600)
    reply.append_text("one")
    assert saver.update(reply) is True
    reply.append_text(" two")
    assert saver.update(reply) is False
    assert store.load_context(conversation.id)[0].content == "one"
    reply.complete = True
    saver.flush(reply)
    assert saver.saves == 2
    assert store.load_context(conversation.id)[0].content == "one two"
    eager = Autosaver(store, conversation.id, interval=0)
    assert eager.update(reply) and eager.update(reply)


def test_title_from_text() -> None:
    assert title_from_text("\n  What is a   fog node?\nmore") == "What is a fog node?"
    assert title_from_text("   ") == "New conversation"
    long = title_from_text("x" * 100, limit=20)
    assert len(long) == 20 and long.endswith("…")
