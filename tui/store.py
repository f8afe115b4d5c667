"""The conversation history: a SQLite database under the platformdirs data directory.

One file, ``<data_dir>/history.db``, holds every conversation and every context entry,
losslessly (role, text, completeness, finish reason, tool calls, tool call id, name,
creation time and order). It runs in WAL mode with a busy timeout, so several spezichat
processes can read and write it at once; every write is one short ``BEGIN IMMEDIATE``
transaction, so a crash or ``kill -9`` loses nothing that was saved. The schema evolves
through append-only migrations keyed by ``PRAGMA user_version``. An FTS5 index, kept in
sync by triggers, makes every message searchable.

Reads use a connection of their own, so they never wait for a write (another process's,
or this one's writer thread waiting for the lock). :meth:`Store.no_wait` makes writes
give up at once (:class:`StoreBusyError`) instead of waiting for the lock: the app's
:class:`tui.store_writer.StoreWriter` writes that way on its event loop and hands what
would wait to its thread. Rows that cannot be read as they are (a bad timestamp, an
unknown role, invalid JSON, bytes where text belongs) are repaired or skipped, never
fatal; :meth:`Store.damage` and :meth:`Store.damage_report` say which conversation.

A file that is not a readable SQLite database is moved aside (renamed with a timestamp)
and a fresh history is started; :attr:`Store.recovered_from` and
:attr:`Store.recovery_notice` tell the caller so it can tell the user.

Nothing here imports Textual: the app, ``spezichat history`` and scripts share it.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from backends.context import Context, ContextEntry
from backends.secrets import private_directory
from tui import store_sql
from tui.store_rows import (
    CONVERSATION_COLUMNS,
    Conversation,
    SearchHit,
    conversation_from_row,
    damage_report,
    entry_from_row,
    scan_damage,
    search_rows,
    title_from_text,
)
from tui.store_schema import (
    BUSY_TIMEOUT_S,
    MIGRATIONS,
    ConversationChangedError,
    ConversationNotFoundError,
    HistoryDamaged,
    HistoryRecovered,
    StoreBusyError,
    StoreError,
    is_busy,
    is_corruption,
    move_aside,
    now,
    recovery_notice,
    stamp,
    translate_error,
    upsert_entry,
)
from tui.store_writer import Autosaver, EntrySink

__all__ = [
    "BUSY_TIMEOUT_S",
    "MIGRATIONS",
    "Autosaver",
    "Conversation",
    "ConversationChangedError",
    "ConversationNotFoundError",
    "EntrySink",
    "HistoryDamaged",
    "HistoryRecovered",
    "SearchHit",
    "Store",
    "StoreBusyError",
    "StoreError",
    "default_path",
    "title_from_text",
]

DB_NAME = "history.db"


def default_path() -> Path:
    """``<platformdirs data dir>/history.db`` (``$XDG_DATA_HOME/spezichat`` on Linux)."""
    from tui.settings import data_dir

    return data_dir() / DB_NAME


# The store -------------------------------------------------------------------------------


class Store:
    """The history database. Thread-safe: one connection for writes and one for reads,
    each serialized by its own lock.

    Every method is a single short transaction (well under a millisecond for
    ``save_entry``). A write waits up to :data:`BUSY_TIMEOUT_S` for another process's
    write to end, unless made inside :meth:`no_wait`; reads never wait for writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.recovered_from: Path | None = None
        """Where a damaged database was moved before this fresh one was created."""
        self.recovery_reason: str | None = None
        """What SQLite said about the damaged file."""
        self._lock = threading.RLock()
        """Guards the write connection, ``self._db``."""
        self._read_lock = threading.RLock()
        """Guards the read connection, ``self._reader``."""
        self._local = threading.local()
        self._damage: dict[tuple[str, str], list[str]] = {}
        """Problems found reading (conversation id, "conversation" or "entries")."""
        try:
            private_directory(self.path.parent)  # 0700 when created here
        except OSError as exc:
            raise StoreError(
                "The conversation history folder could not be created.",
                reason=f"{self.path.parent}: {exc.strerror or exc}",
                suggestion="Check the permissions of the data folder (XDG_DATA_HOME).",
            ) from exc
        try:
            self._db = store_sql.connect(self.path)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise translate_error(exc, self.path, opening=True) from exc
            self.recovery_reason = str(exc)
            self.recovered_from = move_aside(self.path)
            try:
                self._db = store_sql.connect(self.path)
            except sqlite3.Error as again:
                raise translate_error(again, self.path, opening=True) from again
        try:
            self._reader = store_sql.open_reader(self.path)
        except sqlite3.Error as exc:
            self._db.close()
            raise translate_error(exc, self.path, opening=True) from exc
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]

    @classmethod
    def open_default(cls) -> Store:
        """Open ``<data_dir>/history.db``, creating it on first use."""
        return cls(default_path())

    @property
    def recovery_notice(self) -> HistoryRecovered | None:
        """What to tell the user when a damaged database was replaced, else ``None``."""
        if self.recovered_from is None:
            return None
        return recovery_notice(self.path, self.recovery_reason, self.recovered_from)

    # Transactions ----------------------------------------------------------------------
    @contextmanager
    def no_wait(self) -> Iterator[None]:
        """Writes in this thread raise :class:`StoreBusyError` instead of waiting.

        For a caller that must not block (the app's event loop): it hands the write to
        a thread of its own when the database is busy.
        """
        before = getattr(self._local, "no_wait", False)
        self._local.no_wait = True
        try:
            yield
        finally:
            self._local.no_wait = before

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        wait = not getattr(self._local, "no_wait", False)
        if not self._lock.acquire(blocking=wait):
            raise StoreBusyError()  # another thread of ours is writing (or waiting)
        try:
            db = self._db
            if not wait:
                db.execute("PRAGMA busy_timeout = 0")
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
                if not wait and is_busy(exc):
                    raise StoreBusyError() from exc
                raise translate_error(exc, self.path) from exc
            finally:
                if not wait:
                    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        finally:
            self._lock.release()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            try:
                yield self._reader
            except sqlite3.Error as exc:
                raise translate_error(exc, self.path) from exc

    def changed_elsewhere(self) -> bool:
        """True when another connection (process, window) committed since the last call.

        Never waits: while this store is writing, it answers False.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return False
        finally:
            self._lock.release()
        changed: bool = version != self._data_version
        self._data_version = version
        return changed

    # Conversations ---------------------------------------------------------------------
    @staticmethod
    def new_conversation(title: str, backend: str, model: str) -> Conversation:
        """A conversation not stored yet (see :meth:`insert_conversation`)."""
        moment = now()
        return Conversation(
            id=uuid.uuid4().hex,
            title=title,
            backend=backend,
            model=model,
            created=moment,
            updated=moment,
            message_count=0,
        )

    def create_conversation(self, title: str, backend: str, model: str) -> Conversation:
        conversation = self.new_conversation(title, backend, model)
        self.insert_conversation(conversation)
        return conversation

    def insert_conversation(
        self, conversation: Conversation, entries: Sequence[ContextEntry] = ()
    ) -> None:
        """Store ``conversation`` (if it is not stored yet) with its first ``entries``."""
        c = conversation
        with self._write() as db:
            db.execute(
                "INSERT INTO conversations (id, title, backend, model, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (c.id, c.title, c.backend, c.model, stamp(c.created), stamp(c.updated)),
            )
            for entry in entries:
                upsert_entry(db, c.id, entry, None)

    def fork_conversation(
        self, source: Conversation, entries: Sequence[ContextEntry], title: str
    ) -> Conversation:
        """A new conversation holding ``entries`` (a window's view of ``source``)."""
        fork = self.new_conversation(title, source.backend, source.model)
        with self._write() as db:
            db.execute(
                "INSERT INTO conversations (id, title, backend, model, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (fork.id, title, fork.backend, fork.model, stamp(fork.created), stamp(now())),
            )
            for position, entry in enumerate(entries):
                upsert_entry(db, fork.id, entry, position)
        others = sum(1 for entry in entries if entry.role.value != "system")
        return replace(fork, message_count=others)

    def list_conversations(self, limit: int | None = None) -> list[Conversation]:
        """Conversations, most recently updated first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations c"
                " ORDER BY c.updated DESC, c.rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [self._conversation(row) for row in rows]

    def _conversation(self, row: sqlite3.Row) -> Conversation:
        problems: list[str] = []
        conversation = conversation_from_row(row, problems)
        self._note(conversation.id, "conversation", problems)
        return conversation

    def _note(self, conversation_id: str, source: str, problems: list[str]) -> None:
        if problems:
            self._damage[conversation_id, source] = problems
        else:
            self._damage.pop((conversation_id, source), None)

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
        return None if row is None else self._conversation(row)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``prefix``."""
        with self._read() as db:
            return store_sql.resolve_id(db, prefix)

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
            if store_sql.missing(db, conversation_id):
                raise ConversationNotFoundError()
            rows = db.execute(
                "SELECT * FROM entries WHERE conversation_id = ? ORDER BY position, seq",
                (conversation_id,),
            ).fetchall()
        problems: list[str] = []
        entries: list[ContextEntry] = []
        for number, row in enumerate(rows, 1):
            previous = entries[-1].created if entries else None
            entry = entry_from_row(row, number, previous, problems)
            if entry is not None:
                entries.append(entry)
        self._note(conversation_id, "entries", problems)
        return Context(entries)

    def save_entry(self, conversation_id: str, entry: ContextEntry) -> None:
        """Insert or update ``entry`` (by its id); a new entry goes after the others.

        Call it when the user sends a message (before the request goes out), while a
        reply streams (see :class:`Autosaver`) and when the reply ends or is stopped.
        """
        with self._write() as db:
            if store_sql.missing(db, conversation_id):
                raise ConversationNotFoundError(
                    reason="The conversation was deleted, perhaps in another spezichat window.",
                    suggestion="Start a new conversation (Ctrl+N); the text is still on screen.",
                )
            if upsert_entry(db, conversation_id, entry, None):
                store_sql.touch(db, conversation_id)

    def append_entry(self, conversation_id: str, entry: ContextEntry, *, after: str | None) -> None:
        """Like :meth:`save_entry`, for a window that knows the conversation ends at ``after``.

        A new entry is stored only when the stored conversation still ends with the
        entry ``after`` (None: it is empty); otherwise another window (or process)
        added to it meanwhile, and :class:`ConversationChangedError` is raised, so that
        the caller can keep its turns apart (see :meth:`fork_conversation`). An entry
        already stored is updated in place.
        """
        with self._write() as db:
            if store_sql.missing(db, conversation_id):
                raise ConversationNotFoundError(
                    reason="The conversation was deleted, perhaps in another spezichat window."
                )
            store_sql.check_append(db, conversation_id, entry, after)
            if upsert_entry(db, conversation_id, entry, None):
                store_sql.touch(db, conversation_id)

    # Damage ----------------------------------------------------------------------------
    def damage(self, conversation_id: str) -> list[str]:
        """What was repaired or skipped the last time the conversation was read."""
        return [
            problem
            for source in ("conversation", "entries")
            for problem in self._damage.get((conversation_id, source), ())
        ]

    def damage_report(
        self, conversation_id: str, problems: list[str] | None = None
    ) -> HistoryDamaged | None:
        """What to tell the user about a damaged conversation (None when it is fine).

        ``problems``: those of :meth:`scan_damage`; by default, :meth:`damage`'s.
        """
        problems = self.damage(conversation_id) if problems is None else problems
        if not problems:
            return None
        conversation = self.get_conversation(conversation_id)
        title = conversation.title if conversation is not None else "?"
        return damage_report(self.path, conversation_id, title, problems)

    def scan_damage(self) -> dict[str, list[str]]:
        """Every conversation with rows that cannot be read as stored, and why."""
        with self._read() as db:
            return scan_damage(db)

    def save_context(self, conversation_id: str, context: Context) -> None:
        """Make the stored conversation equal ``context``: same entries, same order.

        Entries the context no longer holds (a replaced streaming entry, a retried
        reply) are deleted. Use it after edits that :meth:`save_entry` cannot express.
        """
        with self._write() as db:
            if store_sql.missing(db, conversation_id):
                raise ConversationNotFoundError()
            changed = store_sql.replace_entries(db, conversation_id, context)
            if changed:
                store_sql.touch(db, conversation_id)

    def delete_entries(self, conversation_id: str, entry_ids: Sequence[str]) -> None:
        """Delete entries by id (for "retry"); ids that are not stored are ignored."""
        with self._write() as db:
            deleted = store_sql.delete_entries(db, conversation_id, entry_ids)
            if deleted:
                store_sql.touch(db, conversation_id)

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
        with self._read() as db:
            return search_rows(db, query, limit, mark)

    # Lifetime --------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Run SQLite's and FTS5's integrity checks; an empty list means all is well."""
        problems: list[str] = []
        with self._lock:  # the FTS5 check is written as an INSERT: not on the reader
            db = self._db
            rows = db.execute("PRAGMA integrity_check").fetchall()
            problems += [row[0] for row in rows if row[0] != "ok"]
            try:
                db.execute("INSERT INTO entries_fts(entries_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"search index: {exc}")
        return problems

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
