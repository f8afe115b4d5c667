"""The history writer's changes (jobs) and what it reports (events).

Split from :mod:`tui.store_writer`, which re-exports the events. A job is one change the
app made; :meth:`run` makes it in the store, given what the writer learnt so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backends.context import ContextEntry
from tui.store_rows import Conversation
from tui.store_schema import (
    ConversationChangedError,
    ConversationNotFoundError,
    StoreError,
)

if TYPE_CHECKING:
    from tui.store import Store


# Events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterEvent:
    """Something the app may want to show."""


@dataclass(frozen=True)
class WriteFailed(WriterEvent):
    """A write failed (the first failure since the last success); the change waits."""

    error: StoreError
    pending: int
    """Changes waiting to be saved, the failed one included."""


@dataclass(frozen=True)
class WritesResumed(WriterEvent):
    """After failures, every waiting change was saved."""

    written: int


@dataclass(frozen=True)
class Forked(WriterEvent):
    """Another window changed the conversation: this window's continues in ``fork``."""

    source_id: str
    fork: Conversation
    error: StoreError
    """Why (:class:`ConversationChangedError` or :class:`ConversationNotFoundError`)."""


@dataclass(frozen=True)
class Dropped(WriterEvent):
    """A change that can never be made (renaming a conversation deleted meanwhile)."""

    error: StoreError


@dataclass(frozen=True)
class Written(WriterEvent):
    """The writer's thread saved what waited: what is stored changed."""


@dataclass(frozen=True)
class ChangedElsewhere(WriterEvent):
    """Another process (window) changed the history."""


# Jobs ----------------------------------------------------------------------------------------


def snapshot(entry: ContextEntry) -> ContextEntry:
    """A copy of ``entry`` as it is now (the original may go on streaming)."""
    return ContextEntry(
        entry.role,
        entry.content,
        complete=entry.complete,
        id=entry.id,
        created=entry.created,
        tool_calls=entry.tool_calls,
        tool_call_id=entry.tool_call_id,
        name=entry.name,
        finish_reason=entry.finish_reason,
    )


def fork_title(title: str) -> str:
    return f"{title} (fork)"


@dataclass
class Memory:
    """What the writer learnt about conversations other windows changed."""

    forks: dict[str, Conversation] = field(default_factory=dict)
    """Conversation id -> the fork that continues it in this window."""
    gone: set[str] = field(default_factory=set)
    """Conversations deleted elsewhere after this window stored entries in them."""

    def target(self, conversation: Conversation) -> Conversation:
        while conversation.id in self.forks:
            conversation = self.forks[conversation.id]
        return conversation


@dataclass
class CreateJob:
    conversation: Conversation
    entries: tuple[ContextEntry, ...]

    def run(self, store: Store, memory: Memory) -> WriterEvent | None:
        store.insert_conversation(self.conversation, self.entries)
        return None


@dataclass
class SaveJob:
    conversation: Conversation
    entry: ContextEntry
    before: tuple[ContextEntry, ...] | None
    """The window's entries before this one, for a new entry (None: already stored)."""

    def run(self, store: Store, memory: Memory) -> WriterEvent | None:
        target = memory.target(self.conversation)
        if self.before is None:
            if target.id in memory.gone:
                return None  # reported once
            try:
                store.save_entry(target.id, self.entry)
            except ConversationNotFoundError as error:
                # Deleted in another window after this entry was first stored: later
                # changes have nowhere to go (the text stays on screen).
                memory.gone.add(target.id)
                return Dropped(error)
            return None
        after = self.before[-1].id if self.before else None
        try:
            store.append_entry(target.id, self.entry, after=after)
        except (ConversationChangedError, ConversationNotFoundError) as error:
            fork = store.fork_conversation(
                target, [*self.before, self.entry], fork_title(target.title)
            )
            memory.forks[target.id] = fork
            return Forked(target.id, fork, error)
        return None


@dataclass
class DeleteJob:
    conversation: Conversation
    entry_ids: tuple[str, ...]

    def run(self, store: Store, memory: Memory) -> WriterEvent | None:
        store.delete_entries(memory.target(self.conversation).id, self.entry_ids)
        return None


@dataclass
class RenameJob:
    conversation_id: str
    title: str

    def run(self, store: Store, memory: Memory) -> WriterEvent | None:
        store.rename_conversation(self.conversation_id, self.title)
        return None


@dataclass
class RemoveJob:
    conversation_id: str

    def run(self, store: Store, memory: Memory) -> WriterEvent | None:
        store.delete_conversation(self.conversation_id)
        return None


Job = CreateJob | SaveJob | DeleteJob | RenameJob | RemoveJob


QUICK_WRITE_CHARS = 64_000
"""Entries up to this size may be written on the caller's thread when nothing waits."""


def quick(job: Job) -> bool:
    """Whether ``job`` is small enough to write at once on the caller's thread.

    Saving a long reply again while it streams (and indexing it for search) takes time
    in proportion to its length: such saves always go to the writer thread, so that a
    reply of megabytes never holds up the app's keys.
    """
    if isinstance(job, SaveJob):
        return len(job.entry.content) <= QUICK_WRITE_CHARS
    if isinstance(job, CreateJob):
        return sum(len(entry.content) for entry in job.entries) <= QUICK_WRITE_CHARS
    return True


def retryable(error: StoreError) -> bool:
    """Whether waiting can help (disk full, locked, read-only, I/O): not a missing target."""
    return not isinstance(error, ConversationNotFoundError)
