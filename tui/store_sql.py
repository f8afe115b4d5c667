"""The SQL behind :class:`tui.store.Store`: opening its connections, resolving id
prefixes and rewriting a conversation's entries, each on a connection it is given.

Split from ``tui/store.py``; nothing here locks or opens transactions (the store does).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from backends.context import Context, ContextEntry
from backends.secrets import make_private
from tui.store_schema import (
    BUSY_TIMEOUT_S,
    LIST_IDS,
    ConversationChangedError,
    ConversationNotFoundError,
    migrate,
    now,
    stamp,
    upsert_entry,
)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def connect(path: Path) -> sqlite3.Connection:
    """The connection for writes, migrated and checked."""
    # SQLite creates a database 0644 (umask or not) and gives its -wal and -shm files
    # the database's mode: created 0600 here first, all three stay the user's. (No
    # umask change: it is process-wide, and other threads create files meanwhile.)
    # A file that cannot be opened is left to SQLite, which reports it.
    for suffix in ("", "-wal", "-shm"):
        with suppress(OSError):
            make_private(path.with_name(path.name + suffix), create=not suffix)
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # guarded by the store's lock
    )
    try:
        db.row_factory = sqlite3.Row
        db.text_factory = _decode
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL never corrupts and survives process crashes; only a power
        # loss may drop the last commits.
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db, path)
        # Catches damage that reading the schema alone would not notice.
        result = db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {result}")
    except BaseException:
        db.close()
        raise
    return db


def open_reader(path: Path) -> sqlite3.Connection:
    """The connection for reads: in WAL mode they see the last commit, never wait."""
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,  # guarded by the store's read lock
    )
    try:
        db.row_factory = sqlite3.Row
        db.text_factory = _decode  # text that is not UTF-8 must not make a row unreadable
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA query_only = ON")
    except BaseException:
        db.close()
        raise
    return db


def resolve_id(db: sqlite3.Connection, prefix: str) -> str:
    """The full id of the one conversation whose id starts with ``prefix``."""
    prefix = prefix.strip().lower()
    if not prefix or not all(ch in "0123456789abcdef" for ch in prefix):
        raise ConversationNotFoundError(
            f"'{prefix}' is not a conversation id.",
            reason="Conversation ids are hexadecimal, as `spezichat history list` shows.",
            suggestion=LIST_IDS,
        )
    rows = db.execute(
        "SELECT id FROM conversations WHERE substr(id, 1, ?) = ? LIMIT 2",
        (len(prefix), prefix),
    ).fetchall()
    if not rows:
        raise ConversationNotFoundError(
            f"No conversation id starts with '{prefix}'.",
            reason="No stored conversation has an id that begins with these characters.",
            suggestion=LIST_IDS,
        )
    if len(rows) > 1:
        raise ConversationNotFoundError(
            f"More than one conversation id starts with '{prefix}'.",
            reason="The id prefix is ambiguous.",
            suggestion="Type more characters of the id (see `spezichat history list`).",
        )
    result: str = rows[0]["id"]
    return result


def missing(db: sqlite3.Connection, conversation_id: str) -> bool:
    row = db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
    return row.fetchone() is None


def touch(db: sqlite3.Connection, conversation_id: str) -> None:
    db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp(now()), conversation_id))


def check_append(
    db: sqlite3.Connection, conversation_id: str, entry: ContextEntry, after: str | None
) -> None:
    """Raise :class:`ConversationChangedError` unless ``entry`` is stored already or the
    stored conversation still ends with the entry ``after`` (None: it is empty)."""
    stored = db.execute(
        "SELECT 1 FROM entries WHERE conversation_id = ? AND id = ?",
        (conversation_id, entry.id),
    ).fetchone()
    if stored is None:
        last = db.execute(
            "SELECT id FROM entries WHERE conversation_id = ?"
            " ORDER BY position DESC, seq DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        if (None if last is None else last["id"]) != after:
            raise ConversationChangedError()


def replace_entries(db: sqlite3.Connection, conversation_id: str, context: Context) -> bool:
    """Make the stored entries equal ``context``'s; True when anything changed."""
    changed = False
    keep = {entry.id for entry in context}
    stored = db.execute(
        "SELECT id FROM entries WHERE conversation_id = ?", (conversation_id,)
    ).fetchall()
    for row in stored:
        if row["id"] not in keep:
            db.execute(
                "DELETE FROM entries WHERE conversation_id = ? AND id = ?",
                (conversation_id, row["id"]),
            )
            changed = True
    for position, entry in enumerate(context):
        changed |= upsert_entry(db, conversation_id, entry, position)
    return changed


def delete_entries(db: sqlite3.Connection, conversation_id: str, entry_ids: Sequence[str]) -> int:
    """Delete entries by id; the number deleted."""
    deleted = 0
    for entry_id in entry_ids:
        deleted += db.execute(
            "DELETE FROM entries WHERE conversation_id = ? AND id = ?",
            (conversation_id, entry_id),
        ).rowcount
    return deleted
