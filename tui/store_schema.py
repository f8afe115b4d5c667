"""The SQL side of the history store: migrations, the entry upsert, error translation.

:mod:`tui.store` builds on it; import the public names from there.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from backends.context import ContextEntry
from backends.errors import LLMError, sentence

BUSY_TIMEOUT_S = 10.0
"""How long a write waits for another process's write to finish before giving up."""

# SQLite result codes that mean "this file is not a usable database".
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_CORRUPT_MESSAGES = ("file is not a database", "database disk image is malformed")


class StoreError(LLMError):
    """The history database could not be read or written."""

    description = "The conversation history could not be used."
    reason = "The history database reported an error."
    suggestion = "Restart spezichat; if it keeps happening, check the disk and the file."


class ConversationNotFoundError(StoreError):
    """No conversation has the given id (it may have been deleted by another window)."""

    description = "That conversation does not exist."
    reason = "No stored conversation has this id; it may have been deleted in another window."
    suggestion = "Pick a conversation from the list (`spezichat history list`) or start a new one."


LIST_IDS = (
    "Check the id: `spezichat history list` shows the stored conversations with their ids "
    "(any unique beginning of an id will do)."
)
"""What to do about an id that names no conversation (typed on the command line)."""


class HistoryRecovered(StoreError):
    """Not a failure: the damaged database was moved aside and a new one started."""


class HistoryDamaged(StoreError):
    """Some rows of a conversation could not be read as stored; they were repaired or skipped."""


class StoreBusyError(StoreError):
    """A write that was not to wait found the database locked (see ``Store.no_wait``)."""

    description = "The conversation history is busy."
    reason = "Another program (or another spezichat window) is writing to it."
    suggestion = "The change is saved as soon as the other write ends."


class ConversationChangedError(StoreError):
    """The stored conversation no longer ends where the writing window thinks it does."""

    description = "The conversation was continued in another window."
    reason = "Messages were added to the stored conversation after this window loaded it."
    suggestion = "This window's messages continue in a copy of the conversation."


# Migrations ------------------------------------------------------------------------------
# Append-only: never edit or reorder one that has shipped. Migration N (1-based) takes a
# database from user_version N-1 to N.


def _m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX conversations_updated ON conversations(updated)")
    # `seq` is an INTEGER PRIMARY KEY (a stable rowid) so the FTS index can refer to it.
    db.execute(
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL
                REFERENCES conversations(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            position INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            complete INTEGER NOT NULL,
            finish_reason TEXT,
            tool_calls TEXT,
            tool_call_id TEXT,
            name TEXT,
            created TEXT NOT NULL,
            UNIQUE (conversation_id, id)
        )"""
    )
    db.execute("CREATE INDEX entries_order ON entries(conversation_id, position)")
    db.execute(
        """CREATE VIRTUAL TABLE entries_fts USING fts5(
            content, content='entries', content_rowid='seq',
            tokenize='porter unicode61 remove_diacritics 2'
        )"""
    )
    db.execute(
        """CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
            INSERT INTO entries_fts(rowid, content) VALUES (new.seq, new.content);
        END"""
    )
    db.execute(
        """CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
            INSERT INTO entries_fts(entries_fts, rowid, content)
                VALUES ('delete', old.seq, old.content);
        END"""
    )
    db.execute(
        """CREATE TRIGGER entries_fts_update AFTER UPDATE OF content ON entries BEGIN
            INSERT INTO entries_fts(entries_fts, rowid, content)
                VALUES ('delete', old.seq, old.content);
            INSERT INTO entries_fts(rowid, content) VALUES (new.seq, new.content);
        END"""
    )


def _m002_count_index(db: sqlite3.Connection) -> None:
    # Lets the conversation list count messages from the index alone, without reading
    # the (large) entry rows: 30 ms -> 3 ms for 500 conversations of 40 messages.
    db.execute("CREATE INDEX entries_role ON entries(conversation_id, role)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _m001_initial,
    _m002_count_index,
)


# Helpers ---------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    # Fixed width, so that text order is time order.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the database to the newest schema (refusing one newer than this code)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == len(MIGRATIONS):
        return
    if version > len(MIGRATIONS):
        db.close()
        raise StoreError(
            "The conversation history was written by a newer spezichat.",
            reason=(
                f"{path} has schema version {version}; this spezichat knows "
                f"versions up to {len(MIGRATIONS)}."
            ),
            suggestion="Upgrade spezichat (pip install -U spezichat).",
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, len(MIGRATIONS)):
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL) to ``history.db.corrupt-<time>``."""
    moment = datetime.now().strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{moment}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{moment}-{counter}")
        counter += 1
    try:
        path.replace(target)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
    except OSError as exc:
        raise StoreError(
            "The conversation history is damaged and could not be moved aside.",
            reason=f"{path}: {exc.strerror or exc}",
            suggestion=f"Move or delete {path} by hand, then start spezichat again.",
        ) from exc
    return target


def recovery_notice(path: Path, reason: str | None, kept: Path) -> HistoryRecovered:
    """What to tell the user when the damaged database was replaced by a fresh one."""
    return HistoryRecovered(
        "The conversation history was damaged; a new, empty one was started.",
        reason=f"{path} could not be read ({reason}). The old file was kept as {kept}.",
        suggestion=(
            "New conversations are saved as usual. To rescue old ones, try: "
            f"sqlite3 '{kept}' .recover | sqlite3 rescued.db"
        ),
    )


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    return code in (5, 6) or "locked" in str(exc)


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return any(text in str(exc) for text in _CORRUPT_MESSAGES)  # pragma: no cover - 3.10


def _disk_full(path: Path) -> bool:
    """Whether the disk holding ``path`` has (next to) no room left."""
    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def _permission_problem(path: Path) -> str | None:
    """Why this user may not open ``path`` (or create it), if permissions are the cause."""
    try:
        with open(path, "r+b"):
            pass
    except PermissionError as exc:
        return f"You may not read and write {path}: {exc.strerror or exc}."
    except FileNotFoundError:
        folder = path.parent
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            return f"You may not create files in {folder}, where the history is kept."
    except OSError:
        return None
    return None


def translate_error(exc: sqlite3.Error, path: Path, *, opening: bool = False) -> StoreError:
    """Turn a SQLite error into a :class:`StoreError` that says what to do.

    ``opening``: the error came while opening the database (as every command that only
    reads does), so nothing was being saved.
    """
    text = str(exc)
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if opening and (code == 14 or "unable to open" in text):  # SQLITE_CANTOPEN
        denied = _permission_problem(path)
        if denied is not None:
            return StoreError(
                "The conversation history cannot be opened: permission denied.",
                reason=denied,
                suggestion=(
                    f"Check the permissions: you need to read and write {path} and its "
                    f"folder (for example `chmod u+rw {path}`), or check who owns them."
                ),
            )
    full = code == 13 or "disk is full" in text  # SQLITE_FULL
    if opening and (full or (code == 10 and _disk_full(path))):  # SQLITE_IOERR
        return StoreError(
            "The conversation history could not be opened: the disk is full.",
            reason=sentence(
                f"SQLite needs a little room to open {path} (for its journal), and the disk "
                f"holding it has none left: {text}"
            ),
            suggestion=(
                f"Free some disk space on the disk that holds {path.parent}, then try "
                "again; the stored conversations are unharmed."
            ),
        )
    if code == 5 or "locked" in text:  # SQLITE_BUSY
        return StoreError(
            "The conversation history is busy.",
            reason=f"Another program kept {path} locked for more than {BUSY_TIMEOUT_S:g} s.",
            suggestion=(
                "Try again (the app does so by itself; nothing on screen is lost); if it "
                "persists, close other spezichat windows or programs using the file."
            ),
        )
    if full:
        return StoreError(
            "The conversation could not be saved: the disk is full.",
            reason=sentence(f"SQLite could not write to {path}: {text}"),
            suggestion=(
                "Free some disk space: what is on screen is kept and saved, in order, "
                "as soon as there is room (spezichat retries by itself and with every "
                "new message)."
            ),
        )
    if code == 8 or "readonly" in text:  # SQLITE_READONLY
        return StoreError(
            "The conversation history is read-only.",
            reason=sentence(f"{path} (or its folder) cannot be written: {text}"),
            suggestion="Check the permissions of the file and its folder.",
        )
    if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
        return StoreError(
            "The conversation history is damaged.",
            reason=f"SQLite reported: {text} ({path}).",
            suggestion="Restart spezichat: it moves the damaged file aside and starts afresh.",
        )
    return StoreError(
        "The conversation history could not be used.",
        reason=f"SQLite reported: {text} ({path}).",
        suggestion="Try again; if it keeps failing, restart spezichat.",
    )


def upsert_entry(
    db: sqlite3.Connection, conversation_id: str, entry: ContextEntry, position: int | None
) -> bool:
    """Write one entry; True when a row was inserted or changed."""
    calls = json.dumps([c.to_dict() for c in entry.tool_calls]) if entry.tool_calls else None
    values = (
        entry.role.value,
        entry.content,
        int(entry.complete),
        entry.finish_reason,
        calls,
        entry.tool_call_id,
        entry.name,
        entry.created.isoformat(),
    )
    if position is None:
        next_position = (
            "(SELECT coalesce(max(position), -1) + 1 FROM entries WHERE conversation_id = ?)"
        )
        position_args: tuple[object, ...] = (conversation_id,)
    else:
        next_position, position_args = "?", (position,)
    cursor = db.execute(
        f"""INSERT INTO entries (conversation_id, id, position, role, content, complete,
                finish_reason, tool_calls, tool_call_id, name, created)
            VALUES (?, ?, {next_position}, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (conversation_id, id) DO UPDATE SET
                position = CASE WHEN ? THEN excluded.position ELSE position END,
                role = excluded.role, content = excluded.content,
                complete = excluded.complete, finish_reason = excluded.finish_reason,
                tool_calls = excluded.tool_calls, tool_call_id = excluded.tool_call_id,
                name = excluded.name, created = excluded.created
            WHERE (? AND position IS NOT excluded.position)
                OR role IS NOT excluded.role OR content IS NOT excluded.content
                OR complete IS NOT excluded.complete
                OR finish_reason IS NOT excluded.finish_reason
                OR tool_calls IS NOT excluded.tool_calls
                OR tool_call_id IS NOT excluded.tool_call_id
                OR name IS NOT excluded.name OR created IS NOT excluded.created""",
        (
            conversation_id,
            entry.id,
            *position_args,
            *values,
            position is not None,
            position is not None,
        ),
    )
    return cursor.rowcount > 0
