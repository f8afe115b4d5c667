"""The conversation history: a SQLite database under the platformdirs data directory.

One file, ``<data_dir>/history.db``, holds every conversation and every context entry,
losslessly (role, text, completeness, finish reason, tool calls, tool call id, name,
creation time and order). It runs in WAL mode with a busy timeout, so several spezichat
processes can read and write it at once; every write is one short ``BEGIN IMMEDIATE``
transaction, so a crash or ``kill -9`` loses nothing that was saved. The schema evolves
through append-only migrations keyed by ``PRAGMA user_version``. An FTS5 index, kept in
sync by triggers, makes every message searchable.

A file that is not a readable SQLite database is moved aside (renamed with a timestamp)
and a fresh history is started; :attr:`Store.recovered_from` and
:attr:`Store.recovery_notice` tell the caller so it can tell the user.

Nothing here imports Textual: the app, ``spezichat history`` and scripts share it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from backends.context import Context, ContextEntry, Role, ToolCall
from backends.secrets import make_private, private_directory
from tui.export import export_json, export_markdown, export_to_file
from tui.store_schema import (
    BUSY_TIMEOUT_S,
    MIGRATIONS,
    ConversationNotFoundError,
    HistoryRecovered,
    StoreError,
    is_corruption,
    now,
    stamp,
    translate_error,
    upsert_entry,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "MIGRATIONS",
    "Autosaver",
    "Conversation",
    "ConversationNotFoundError",
    "HistoryRecovered",
    "SearchHit",
    "Store",
    "StoreError",
    "default_path",
    "export_json",
    "export_markdown",
    "export_to_file",
    "title_from_text",
]

DB_NAME = "history.db"


@dataclass(frozen=True)
class Conversation:
    """One stored conversation; ``message_count`` counts entries other than system prompts."""

    id: str
    title: str
    backend: str
    model: str
    created: datetime
    updated: datetime
    message_count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (timestamps in ISO 8601), for exports and `history --json`."""
        return {
            "id": self.id,
            "title": self.title,
            "backend": self.backend,
            "model": self.model,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "message_count": self.message_count,
        }


@dataclass(frozen=True)
class SearchHit:
    """One entry matching a search; ``snippet`` marks the matched words (see ``mark``)."""

    conversation_id: str
    conversation_title: str
    entry_id: str
    role: Role
    snippet: str
    created: datetime


def default_path() -> Path:
    """``<platformdirs data dir>/history.db`` (``$XDG_DATA_HOME/spezichat`` on Linux)."""
    from tui.settings import data_dir

    return data_dir() / DB_NAME


def title_from_text(text: str, limit: int = 60) -> str:
    """A conversation title from its first message: the first line, shortened."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = " ".join(line.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line or "New conversation"


def _entry_from_row(row: sqlite3.Row) -> ContextEntry:
    calls = json.loads(row["tool_calls"]) if row["tool_calls"] else ()
    return ContextEntry(
        Role(row["role"]),
        row["content"],
        complete=bool(row["complete"]),
        id=row["id"],
        created=datetime.fromisoformat(row["created"]),
        tool_calls=[ToolCall(**call) for call in calls],
        tool_call_id=row["tool_call_id"],
        name=row["name"],
        finish_reason=row["finish_reason"],
    )


_CONVERSATION_COLUMNS = """c.id, c.title, c.backend, c.model, c.created, c.updated,
    (SELECT count(*) FROM entries e WHERE e.conversation_id = c.id AND e.role != 'system')
        AS message_count"""


def _conversation_from_row(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        backend=row["backend"],
        model=row["model"],
        created=datetime.fromisoformat(row["created"]),
        updated=datetime.fromisoformat(row["updated"]),
        message_count=row["message_count"],
    )


def _phrase(query: str) -> str:
    """``query`` as one FTS5 phrase: every character literal."""
    return '"' + query.replace('"', '""') + '"'


# The store -------------------------------------------------------------------------------


class Store:
    """The history database. Thread-safe: one connection, calls serialized by a lock.

    Every method is a single short transaction (well under a millisecond for
    ``save_entry``), so the app may call it from its event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.recovered_from: Path | None = None
        """Where a damaged database was moved before this fresh one was created."""
        self.recovery_reason: str | None = None
        """What SQLite said about the damaged file."""
        self._lock = threading.RLock()
        try:
            private_directory(self.path.parent)  # 0700 when created here
        except OSError as exc:
            raise StoreError(
                "The conversation history folder could not be created.",
                reason=f"{self.path.parent}: {exc.strerror or exc}",
                suggestion="Check the permissions of the data folder (XDG_DATA_HOME).",
            ) from exc
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise translate_error(exc, self.path) from exc
            self.recovery_reason = str(exc)
            self.recovered_from = self._move_aside()
            try:
                self._db = self._connect()
            except sqlite3.Error as again:
                raise translate_error(again, self.path) from again

    @classmethod
    def open_default(cls) -> Store:
        """Open ``<data_dir>/history.db``, creating it on first use."""
        return cls(default_path())

    # Opening ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # SQLite creates a database 0644 (umask or not) and gives its -wal and -shm files
        # the database's mode: created 0600 here first, all three stay the user's. (No
        # umask change: it is process-wide, and other threads create files meanwhile.)
        # A file that cannot be opened is left to SQLite, which reports it.
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                make_private(self.path.with_name(self.path.name + suffix), create=not suffix)
        db = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock
        )
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL never corrupts and survives process crashes; only a power
            # loss may drop the last commits.
            db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(db)
            # Catches damage that reading the schema alone would not notice.
            result = db.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {result}")
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        if version > len(MIGRATIONS):
            db.close()
            raise StoreError(
                "The conversation history was written by a newer spezichat.",
                reason=(
                    f"{self.path} has schema version {version}; this spezichat knows "
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

    def _move_aside(self) -> Path:
        """Rename the damaged file (and its WAL) to ``history.db.corrupt-<time>``."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        try:
            self.path.replace(target)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.replace(target.with_name(target.name + suffix))
        except OSError as exc:
            raise StoreError(
                "The conversation history is damaged and could not be moved aside.",
                reason=f"{self.path}: {exc.strerror or exc}",
                suggestion=f"Move or delete {self.path} by hand, then start spezichat again.",
            ) from exc
        return target

    @property
    def recovery_notice(self) -> HistoryRecovered | None:
        """What to tell the user when a damaged database was replaced, else ``None``."""
        if self.recovered_from is None:
            return None
        return HistoryRecovered(
            "The conversation history was damaged; a new, empty one was started.",
            reason=(
                f"{self.path} could not be read ({self.recovery_reason}). The old file was "
                f"kept as {self.recovered_from}."
            ),
            suggestion=(
                "New conversations are saved as usual. To rescue old ones, try: "
                f"sqlite3 '{self.recovered_from}' .recover | sqlite3 rescued.db"
            ),
        )

    # Transactions ----------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise translate_error(exc, self.path) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise translate_error(exc, self.path) from exc

    # Conversations ---------------------------------------------------------------------
    def create_conversation(self, title: str, backend: str, model: str) -> Conversation:
        moment = now()
        conversation = Conversation(
            id=uuid.uuid4().hex,
            title=title,
            backend=backend,
            model=model,
            created=moment,
            updated=moment,
            message_count=0,
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO conversations (id, title, backend, model, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation.id, title, backend, model, stamp(moment), stamp(moment)),
            )
        return conversation

    def list_conversations(self, limit: int | None = None) -> list[Conversation]:
        """Conversations, most recently updated first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c"
                " ORDER BY c.updated DESC, c.rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [_conversation_from_row(row) for row in rows]

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
        return None if row is None else _conversation_from_row(row)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``prefix``."""
        prefix = prefix.strip().lower()
        if not prefix or not all(ch in "0123456789abcdef" for ch in prefix):
            raise ConversationNotFoundError(
                f"'{prefix}' is not a conversation id.",
                reason="Conversation ids are hexadecimal, as `spezichat history list` shows.",
            )
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM conversations WHERE substr(id, 1, ?) = ? LIMIT 2",
                (len(prefix), prefix),
            ).fetchall()
        if not rows:
            raise ConversationNotFoundError(
                f"No conversation id starts with '{prefix}'.",
                reason="No stored conversation has an id that begins with these characters.",
            )
        if len(rows) > 1:
            raise ConversationNotFoundError(
                f"More than one conversation id starts with '{prefix}'.",
                reason="The id prefix is ambiguous.",
                suggestion="Type more characters of the id (see `spezichat history list`).",
            )
        result: str = rows[0]["id"]
        return result

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
            )
            if cursor.rowcount == 0:
                raise ConversationNotFoundError()

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and its entries (no error if it is already gone)."""
        with self._write() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # Entries ---------------------------------------------------------------------------
    def load_context(self, conversation_id: str) -> Context:
        with self._read() as db:
            if self._missing(db, conversation_id):
                raise ConversationNotFoundError()
            rows = db.execute(
                "SELECT * FROM entries WHERE conversation_id = ? ORDER BY position, seq",
                (conversation_id,),
            ).fetchall()
        return Context([_entry_from_row(row) for row in rows])

    def save_entry(self, conversation_id: str, entry: ContextEntry) -> None:
        """Insert or update ``entry`` (by its id); a new entry goes after the others.

        Call it when the user sends a message (before the request goes out), while a
        reply streams (see :class:`Autosaver`) and when the reply ends or is stopped.
        """
        with self._write() as db:
            if self._missing(db, conversation_id):
                raise ConversationNotFoundError(
                    reason="The conversation was deleted, perhaps in another spezichat window.",
                    suggestion="Start a new conversation (Ctrl+N); the text is still on screen.",
                )
            if upsert_entry(db, conversation_id, entry, None):
                self._touch(db, conversation_id)

    def save_context(self, conversation_id: str, context: Context) -> None:
        """Make the stored conversation equal ``context``: same entries, same order.

        Entries the context no longer holds (a replaced streaming entry, a retried
        reply) are deleted. Use it after edits that :meth:`save_entry` cannot express.
        """
        with self._write() as db:
            if self._missing(db, conversation_id):
                raise ConversationNotFoundError()
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
            if changed:
                self._touch(db, conversation_id)

    def delete_entries(self, conversation_id: str, entry_ids: Sequence[str]) -> None:
        """Delete entries by id (for "retry"); ids that are not stored are ignored."""
        with self._write() as db:
            deleted = 0
            for entry_id in entry_ids:
                deleted += db.execute(
                    "DELETE FROM entries WHERE conversation_id = ? AND id = ?",
                    (conversation_id, entry_id),
                ).rowcount
            if deleted:
                self._touch(db, conversation_id)

    @staticmethod
    def _missing(db: sqlite3.Connection, conversation_id: str) -> bool:
        row = db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
        return row.fetchone() is None

    @staticmethod
    def _touch(db: sqlite3.Connection, conversation_id: str) -> None:
        db.execute(
            "UPDATE conversations SET updated = ? WHERE id = ?", (stamp(now()), conversation_id)
        )

    # Search ----------------------------------------------------------------------------
    def search(
        self, query: str, limit: int = 50, *, mark: tuple[str, str] = ("**", "**")
    ) -> list[SearchHit]:
        """Full-text search over every conversation's messages, best matches first.

        ``query`` uses FTS5 syntax (words, "phrases", prefix*, AND/OR/NOT); text that is
        not valid FTS5 syntax is searched as one literal phrase instead. System prompts
        are not searched. ``mark`` surrounds the matched words in the snippet.
        """
        if not query.strip():
            return []
        with self._lock:
            try:
                rows = self._match(query, limit, mark)
            except sqlite3.OperationalError:
                # Not valid FTS5 syntax (`"unbalanced`, `a:b`, `-x`): search literally.
                try:
                    rows = self._match(_phrase(query), limit, mark)
                except sqlite3.Error as exc:
                    raise translate_error(exc, self.path) from exc
            except sqlite3.Error as exc:
                raise translate_error(exc, self.path) from exc
        return [
            SearchHit(
                conversation_id=row["conversation_id"],
                conversation_title=row["title"],
                entry_id=row["id"],
                role=Role(row["role"]),
                snippet=" ".join(row["snippet"].split()),
                created=datetime.fromisoformat(row["created"]),
            )
            for row in rows
        ]

    def _match(self, query: str, limit: int, mark: tuple[str, str]) -> list[sqlite3.Row]:
        return self._db.execute(
            """SELECT e.conversation_id, c.title, e.id, e.role, e.created,
                    snippet(entries_fts, 0, ?, ?, '…', 16) AS snippet
                FROM entries_fts
                JOIN entries e ON e.seq = entries_fts.rowid
                JOIN conversations c ON c.id = e.conversation_id
                WHERE entries_fts MATCH ? AND e.role != 'system'
                ORDER BY entries_fts.rank, e.seq DESC
                LIMIT ?""",
            (mark[0], mark[1], query, limit),
        ).fetchall()

    # Lifetime --------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Run SQLite's and FTS5's integrity checks; an empty list means all is well."""
        problems: list[str] = []
        with self._read() as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
            problems += [row[0] for row in rows if row[0] != "ok"]
            try:
                db.execute("INSERT INTO entries_fts(entries_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"search index: {exc}")
        return problems

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Autosaver:
    """Saves a streaming reply at most once per ``interval`` seconds, and on :meth:`flush`.

    Call :meth:`update` after every piece of text and :meth:`flush` when the reply ends,
    is stopped or fails; a crash then loses at most ``interval`` seconds of the reply.
    """

    def __init__(self, store: Store, conversation_id: str, interval: float = 1.0) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.interval = interval
        self.saves = 0
        """How many times an entry was written."""
        self._last: float | None = None

    def update(self, entry: ContextEntry) -> bool:
        """Save ``entry`` if the interval has passed since the last save; True if saved."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._save(entry, now)
        return True

    def flush(self, entry: ContextEntry) -> None:
        """Save ``entry`` now, whatever the interval."""
        self._save(entry, time.monotonic())

    def _save(self, entry: ContextEntry, now: float) -> None:
        self.store.save_entry(self.conversation_id, entry)
        self._last = now
        self.saves += 1
