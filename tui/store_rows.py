"""Reading stored rows back, tolerantly: one damaged row never makes the history unusable.

The database is shared with other programs (other spezichat versions, ``sqlite3`` by
hand, a disk that flipped a bit), so a row may hold a timestamp that is not one, a role
this spezichat does not know, tool calls that are not valid JSON or bytes where text
belongs. Such a row is repaired where the repair loses nothing that matters (bytes are
decoded, a bad timestamp becomes the one before it) and skipped where it cannot be used
(an unknown role); each time a :class:`Damage` note says what was done, so the caller
can name the affected conversation. :mod:`tui.store` re-exports the public names.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backends.context import ContextEntry, Role, ToolCall
from tui.store_schema import HistoryDamaged

UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""Stands in for a timestamp that cannot be read and has nothing before it."""

DAMAGE_FILTER = """(
    typeof(e.id) != 'text' OR typeof(e.role) != 'text' OR typeof(e.content) != 'text'
    OR typeof(e.created) != 'text' OR typeof(e.complete) != 'integer'
    OR e.role NOT IN ('system', 'user', 'assistant', 'tool')
    OR e.created NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
    OR julianday(e.created) IS NULL
    OR (e.tool_calls IS NOT NULL AND CASE WHEN typeof(e.tool_calls) = 'text'
        AND json_valid(e.tool_calls) THEN json_type(e.tool_calls) != 'array' ELSE 1 END)
    OR (e.tool_call_id IS NOT NULL AND typeof(e.tool_call_id) != 'text')
    OR (e.name IS NOT NULL AND typeof(e.name) != 'text')
    OR (e.finish_reason IS NOT NULL AND typeof(e.finish_reason) != 'text')
)"""
"""SQL condition (entries aliased ``e``) that finds rows worth a closer look, cheaply."""

CONVERSATION_COLUMNS = """c.id, c.title, c.backend, c.model, c.created, c.updated,
    (SELECT count(*) FROM entries e WHERE e.conversation_id = c.id AND e.role != 'system')
        AS message_count"""

CONVERSATION_DAMAGE_FILTER = """(
    typeof(c.title) != 'text' OR typeof(c.backend) != 'text' OR typeof(c.model) != 'text'
    OR typeof(c.created) != 'text' OR typeof(c.updated) != 'text'
    OR julianday(c.created) IS NULL OR julianday(c.updated) IS NULL
)"""


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


def text(value: object) -> str:
    """A stored value as text: bytes are decoded (invalid UTF-8 replaced), None is ""."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def optional_text(value: object) -> str | None:
    return None if value is None else text(value)


def parse_time(value: object) -> datetime | None:
    """A stored ISO 8601 timestamp, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _short(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _tool_calls(value: object) -> tuple[ToolCall, ...]:
    """Stored tool calls; ValueError when they are not a JSON list of call objects."""
    if value is None or value == "":
        return ()
    data = json.loads(text(value))
    if not isinstance(data, list):
        raise ValueError("not a list")
    calls = []
    for call in data:
        if not isinstance(call, dict) or set(call) != {"id", "name", "arguments"}:
            raise ValueError("not a call object")
        if not all(isinstance(part, str) for part in call.values()):
            raise ValueError("not a call object")
        calls.append(ToolCall(**call))
    return tuple(calls)


def entry_from_row(
    row: sqlite3.Row, number: int, previous: datetime | None, problems: list[str]
) -> ContextEntry | None:
    """Row ``number`` (1-based) of a conversation as an entry; None when it is unusable.

    ``previous`` is the time of the entry before it (stands in for a bad timestamp).
    Every repair or omission appends a note to ``problems``.
    """
    entry_id = text(row["id"])
    where = f"message {number} (id {entry_id[:8]})"
    role_value = text(row["role"])
    try:
        role = Role(role_value)
    except ValueError:
        problems.append(f"{where}: unknown role {_short(row['role'])}; skipped")
        return None
    if not isinstance(row["id"], str):
        problems.append(f"{where}: the id is not text; read as text")
    content = row["content"]
    if not isinstance(content, str):
        problems.append(f"{where}: the text is stored as {type(content).__name__}; decoded")
    created = parse_time(row["created"])
    if created is None:
        problems.append(
            f"{where}: invalid timestamp {_short(row['created'])}; "
            "the one before it is shown instead"
        )
        created = previous or UNKNOWN_TIME
    try:
        calls = _tool_calls(row["tool_calls"])
    except (ValueError, TypeError):
        problems.append(f"{where}: its function calls are not valid JSON; left out")
        calls = ()
    others = {name: row[name] for name in ("tool_call_id", "name", "finish_reason")}
    for name, value in others.items():
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}: {name} is not text; decoded")
    complete = row["complete"]
    if not isinstance(complete, int):
        problems.append(f"{where}: its completeness is {_short(complete)}; read as complete")
        complete = 1
    return ContextEntry(
        role,
        text(content),
        complete=bool(complete),
        id=entry_id,
        created=created,
        tool_calls=calls,
        tool_call_id=optional_text(others["tool_call_id"]),
        name=optional_text(others["name"]),
        finish_reason=optional_text(others["finish_reason"]),
    )


def conversation_from_row(row: sqlite3.Row, problems: list[str]) -> Conversation:
    """A conversation's metadata; bad values are repaired and noted in ``problems``."""
    for name in ("title", "backend", "model"):
        if not isinstance(row[name], str):
            problems.append(f"its {name} is not text; decoded")
    created = parse_time(row["created"])
    updated = parse_time(row["updated"])
    for name, value in (("created", created), ("updated", updated)):
        if value is None:
            problems.append(f"invalid {name} time {_short(row[name])}; replaced")
    created = created or updated or UNKNOWN_TIME
    updated = updated or created
    return Conversation(
        id=text(row["id"]),
        title=text(row["title"]),
        backend=text(row["backend"]),
        model=text(row["model"]),
        created=created,
        updated=updated,
        message_count=int(row["message_count"]),
    )


def hit_from_row(row: sqlite3.Row) -> SearchHit | None:
    """A search result; None for a row with an unknown role."""
    try:
        role = Role(text(row["role"]))
    except ValueError:
        return None
    return SearchHit(
        conversation_id=text(row["conversation_id"]),
        conversation_title=text(row["title"]),
        entry_id=text(row["id"]),
        role=role,
        snippet=" ".join(text(row["snippet"]).split()),
        created=parse_time(row["created"]) or UNKNOWN_TIME,
    )


def title_from_text(text: str, limit: int = 60) -> str:
    """A conversation title from its first message: the first line, shortened."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = " ".join(line.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line or "New conversation"


def search_rows(
    db: sqlite3.Connection, query: str, limit: int, mark: tuple[str, str]
) -> list[SearchHit]:
    """The FTS5 search of :meth:`tui.store.Store.search`; invalid syntax is taken literally."""
    try:
        rows = _match(db, query, limit, mark)
    except sqlite3.OperationalError:
        # Not valid FTS5 syntax (`"unbalanced`, `a:b`, `-x`): search literally.
        rows = _match(db, '"' + query.replace('"', '""') + '"', limit, mark)
    hits = (hit_from_row(row) for row in rows)
    return [hit for hit in hits if hit is not None]


def _match(
    db: sqlite3.Connection, query: str, limit: int, mark: tuple[str, str]
) -> list[sqlite3.Row]:
    return db.execute(
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


def scan_damage(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Conversation id -> what cannot be read as stored, for every damaged conversation.

    SQL picks the suspicious rows (a scan of the table that reads no message text);
    the same code that reads them for the app then says what is wrong.
    """
    entry_rows = db.execute(
        "SELECT e.*, (SELECT count(*) FROM entries o WHERE"
        " o.conversation_id = e.conversation_id AND (o.position < e.position"
        " OR (o.position = e.position AND o.seq <= e.seq))) AS number"
        f" FROM entries e WHERE {DAMAGE_FILTER} ORDER BY e.conversation_id, number"
    ).fetchall()
    conversation_rows = db.execute(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE {CONVERSATION_DAMAGE_FILTER}"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for row in conversation_rows:
        problems: list[str] = []
        conversation_from_row(row, problems)
        if problems:
            found.setdefault(text(row["id"]), []).extend(problems)
    for row in entry_rows:
        problems = []
        entry_from_row(row, row["number"], None, problems)
        if problems:
            found.setdefault(text(row["conversation_id"]), []).extend(problems)
    return found


def damage_report(
    path: Path, conversation_id: str, title: str, problems: list[str]
) -> HistoryDamaged:
    """The error that names a damaged conversation and says what was done."""
    shown = "; ".join(problems[:5])
    if len(problems) > 5:
        shown += f"; and {len(problems) - 5} more"
    return HistoryDamaged(
        f"Part of the conversation “{title}” ({conversation_id[:8]}) could not be read.",
        reason=f"{path}: {shown}.",
        suggestion=(
            "Everything else in it is shown and can be continued; the damaged rows are "
            "left in the file as they are."
        ),
    )
