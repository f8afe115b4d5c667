"""The conversation held by a session: an ordered list of typed entries.

Entries record system prompts, user inputs, assistant outputs (streamed piece by piece,
with a ``complete`` flag), assistant tool calls and tool results. A context round-trips
losslessly through JSON, which is how it is persisted and exported.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, overload

CANCELLED_TOOL_RESULT = "The user stopped this function call before it returned a result."
"""The tool result recorded for a call that was stopped, or that has no result at all."""


class Role(str, enum.Enum):
    """Who produced an entry."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class ToolCall:
    """One function call requested by the model; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex


class ContextEntry:
    """One message of the conversation.

    Streamed assistant text is kept as a list of pieces and joined on demand, so
    appending a token costs O(1) however long the reply grows.
    """

    __slots__ = (
        "_cache",
        "_parts",
        "complete",
        "created",
        "finish_reason",
        "id",
        "name",
        "role",
        "tool_call_id",
        "tool_calls",
    )

    def __init__(
        self,
        role: Role,
        content: str = "",
        *,
        complete: bool = True,
        id: str | None = None,
        created: datetime | None = None,
        tool_calls: Sequence[ToolCall] = (),
        tool_call_id: str | None = None,
        name: str | None = None,
        finish_reason: str | None = None,
    ) -> None:
        self.role = Role(role)
        self._parts: list[str] = [content] if content else []
        self._cache: str | None = content
        self.complete = complete
        self.id = id or _new_id()
        self.created = created or _now()
        self.tool_calls: tuple[ToolCall, ...] = tuple(tool_calls)
        self.tool_call_id = tool_call_id
        self.name = name
        self.finish_reason = finish_reason

    @property
    def content(self) -> str:
        if self._cache is None:
            self._cache = "".join(self._parts)
            self._parts = [self._cache] if self._cache else []
        return self._cache

    @content.setter
    def content(self, value: str) -> None:
        self._parts = [value] if value else []
        self._cache = value

    def append_text(self, piece: str) -> None:
        """Append one streamed piece of text."""
        if piece:
            self._parts.append(piece)
            self._cache = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "role": self.role.value,
            "content": self.content,
            "complete": self.complete,
            "created": self.created.isoformat(),
        }
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.finish_reason is not None:
            data["finish_reason"] = self.finish_reason
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextEntry:
        return cls(
            Role(data["role"]),
            data.get("content") or "",
            complete=bool(data.get("complete", True)),
            id=data.get("id"),
            created=datetime.fromisoformat(data["created"]) if "created" in data else None,
            tool_calls=[ToolCall(**call) for call in data.get("tool_calls", ())],
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            finish_reason=data.get("finish_reason"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContextEntry):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        text = self.content
        short = text if len(text) <= 40 else text[:37] + "..."
        return f"ContextEntry({self.role.value}, {short!r}, complete={self.complete})"


@dataclass
class Context(Sequence[ContextEntry]):
    """The ordered conversation of one session."""

    entries: list[ContextEntry] = field(default_factory=list)

    @classmethod
    def with_system(cls, prompts: Iterable[str]) -> Context:
        context = cls()
        for prompt in prompts:
            context.entries.append(ContextEntry(Role.SYSTEM, prompt))
        return context

    # Sequence protocol -------------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> ContextEntry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ContextEntry]: ...
    def __getitem__(self, index: int | slice) -> ContextEntry | Sequence[ContextEntry]:
        return self.entries[index]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ContextEntry]:
        return iter(self.entries)

    # Appending ---------------------------------------------------------------------
    def append_system(self, prompt: str, *, at_start: bool = True) -> ContextEntry:
        """Add a system prompt, by default after the existing system prompts at the top."""
        entry = ContextEntry(Role.SYSTEM, prompt)
        if at_start:
            position = 0
            while position < len(self.entries) and self.entries[position].role is Role.SYSTEM:
                position += 1
            self.entries.insert(position, entry)
        else:
            self.entries.append(entry)
        return entry

    def append_user(
        self, text: str, *, id: str | None = None, created: datetime | None = None
    ) -> ContextEntry:
        entry = ContextEntry(Role.USER, text, id=id, created=created)
        self.entries.append(entry)
        return entry

    def streaming_entry(self) -> ContextEntry | None:
        """The assistant entry currently being streamed, if any."""
        if self.entries:
            last = self.entries[-1]
            if last.role is Role.ASSISTANT and not last.complete and not last.tool_calls:
                return last
        return None

    def append_assistant(
        self, text: str, *, complete: bool = False, overwrite: bool = False
    ) -> ContextEntry:
        """Append assistant output.

        While the last entry is an incomplete assistant message the text is added to it
        (or replaces it with ``overwrite``); otherwise a new entry starts.
        """
        entry = self.streaming_entry()
        if entry is None:
            entry = ContextEntry(Role.ASSISTANT, text, complete=complete)
            self.entries.append(entry)
        else:
            if overwrite:
                entry.content = text
            else:
                entry.append_text(text)
            entry.complete = complete
        if complete and entry.finish_reason is None:
            entry.finish_reason = "stop"
        return entry

    def complete_assistant(self, finish_reason: str = "stop") -> ContextEntry | None:
        """Mark the streaming assistant entry complete."""
        entry = self.streaming_entry()
        if entry is not None:
            entry.complete = True
            entry.finish_reason = finish_reason
        return entry

    def mark_interrupted(self, finish_reason: str) -> ContextEntry | None:
        """Leave the streaming entry incomplete but record why it ended (stopped, error)."""
        entry = self.streaming_entry()
        if entry is not None:
            entry.finish_reason = finish_reason
        return entry

    def append_tool_calls(self, calls: Sequence[ToolCall], text: str = "") -> ContextEntry:
        """Record the model's request to call functions (an assistant entry)."""
        entry = self.streaming_entry()
        if entry is not None:
            # Text streamed before the calls belongs to the same assistant turn.
            self.entries.remove(entry)
            text = entry.content + text
        new = ContextEntry(Role.ASSISTANT, text, tool_calls=calls, finish_reason="tool_calls")
        self.entries.append(new)
        return new

    def append_tool_result(self, call_id: str, name: str, content: str) -> ContextEntry:
        entry = ContextEntry(Role.TOOL, content, tool_call_id=call_id, name=name)
        self.entries.append(entry)
        return entry

    def unanswered_calls(self) -> list[ToolCall]:
        """Calls of the last tool-calls entry that have no result after it yet."""
        for position in range(len(self.entries) - 1, -1, -1):
            entry = self.entries[position]
            if entry.role is Role.ASSISTANT and entry.tool_calls:
                answered = {
                    e.tool_call_id for e in self.entries[position + 1 :] if e.role is Role.TOOL
                }
                return [call for call in entry.tool_calls if call.id not in answered]
            if entry.role is not Role.TOOL:
                return []
        return []

    def answer_open_calls(self, content: str = CANCELLED_TOOL_RESULT) -> list[ContextEntry]:
        """Record ``content`` as the result of every call still waiting for one."""
        return [
            self.append_tool_result(call.id, call.name, content) for call in self.unanswered_calls()
        ]

    # Editing -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the conversation but keep the system prompts."""
        self.entries = [e for e in self.entries if e.role is Role.SYSTEM]

    def remove_last_reply(self) -> list[ContextEntry]:
        """Remove everything after the last user message (for "retry")."""
        for position in range(len(self.entries) - 1, -1, -1):
            if self.entries[position].role is Role.USER:
                removed = self.entries[position + 1 :]
                del self.entries[position + 1 :]
                return removed
        return []

    def last(self, role: Role) -> ContextEntry | None:
        for entry in reversed(self.entries):
            if entry.role is role:
                return entry
        return None

    def copy(self) -> Context:
        return Context.from_list(self.to_list())

    # Wire formats ----------------------------------------------------------------------
    def to_messages(self) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat-completions ``messages``.

        Incomplete assistant entries are sent as they are (the model continues from
        what was kept); empty incomplete ones are skipped.

        The API requires each assistant message with ``tool_calls`` to be followed by one
        tool message per call id. A conversation that breaks this (a call stopped or
        lost in a crash, perhaps by an older version) is repaired here, so that it can
        always continue: a missing result is sent as :data:`CANCELLED_TOOL_RESULT`, a
        result that answers no call of the message before it is left out.
        """
        messages: list[dict[str, Any]] = []
        open_calls: list[ToolCall] = []
        for entry in self.entries:
            if entry.role is Role.TOOL:
                call = next((c for c in open_calls if c.id == entry.tool_call_id), None)
                if call is not None:
                    open_calls.remove(call)
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": entry.content}
                    )
                continue
            _answer(messages, open_calls)
            if entry.role is Role.ASSISTANT:
                message: dict[str, Any] = {"role": "assistant", "content": entry.content}
                if entry.tool_calls:
                    message["tool_calls"] = [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in entry.tool_calls
                    ]
                    if not entry.content:
                        message["content"] = None
                    open_calls = list(entry.tool_calls)
                elif not entry.content:
                    continue
                messages.append(message)
            else:
                messages.append({"role": entry.role.value, "content": entry.content})
        _answer(messages, open_calls)
        return messages

    def to_list(self) -> list[dict[str, Any]]:
        return [entry.to_dict() for entry in self.entries]

    @classmethod
    def from_list(cls, data: Iterable[dict[str, Any]]) -> Context:
        return cls([ContextEntry.from_dict(item) for item in data])

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_list(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Context:
        return cls.from_list(json.loads(text))


def _answer(messages: list[dict[str, Any]], calls: list[ToolCall]) -> None:
    """Send :data:`CANCELLED_TOOL_RESULT` for each call in ``calls`` and forget them."""
    for call in calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": CANCELLED_TOOL_RESULT})
    calls.clear()
