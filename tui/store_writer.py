"""The app's writes to the history: never blocking its event loop, always in order.

A :class:`StoreWriter` takes every change the app makes (a new conversation, an entry,
a deletion, a rename) in the order the app makes them. While nothing waits, a change is
written at once, without waiting (:meth:`tui.store.Store.no_wait`: well under a
millisecond), so what the app reads next already includes it. When the database is
locked by another process, the disk is full or an earlier change still waits, the change
joins an ordered queue that a single thread writes; nothing jumps that queue, so
entries are stored at their place in the conversation. A change that fails stays at the
head of the queue and is tried again after a pause (growing to 30 s), with every new
change and on :meth:`StoreWriter.retry`; :meth:`StoreWriter.close` makes a last try.

Two windows on one conversation: each new entry is stored only if the stored
conversation still ends where this window's ends (:meth:`tui.store.Store.append_entry`).
If another window added to it meanwhile (or deleted it), this window's entries are not
interleaved with the other's: the conversation as this window has it is saved as a new
conversation (a fork) and this window's later changes go there. Forking rather than
refusing: the user's message and the streaming reply are already on screen when the
write happens, and refusing would lose them or make the user type them again; a fork
loses nothing and leaves the other window's turns intact too.

Results come back through ``on_event`` (called on the writer's thread, or on the caller's
when written at once): :class:`WriteFailed`, :class:`WritesResumed`, :class:`Forked`,
:class:`Dropped`, :class:`Written` and, while idle, :class:`ChangedElsewhere` when another
process committed (a conversation created in another window). Nothing here imports
Textual.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from backends.context import Context, ContextEntry
from tui.store_jobs import (
    QUICK_WRITE_CHARS,
    ChangedElsewhere,
    CreateJob,
    DeleteJob,
    Dropped,
    Forked,
    Job,
    Memory,
    RemoveJob,
    RenameJob,
    SaveJob,
    WriteFailed,
    WriterEvent,
    WritesResumed,
    Written,
    quick,
    retryable,
    snapshot,
)
from tui.store_rows import Conversation
from tui.store_schema import (
    StoreBusyError,
    StoreError,
)

if TYPE_CHECKING:
    from tui.store import Store

__all__ = [
    "POLL_S",
    "QUICK_WRITE_CHARS",
    "RETRY_AFTER_S",
    "Autosaver",
    "ChangedElsewhere",
    "Dropped",
    "EntrySink",
    "Forked",
    "StoreWriter",
    "WriteFailed",
    "WriterEvent",
    "WritesResumed",
    "Written",
]

RETRY_AFTER_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Pauses before trying a failed write again (the last one repeats)."""

POLL_S = 2.0
"""While idle, how often the writer asks whether another process changed the history."""


class EntrySink(Protocol):
    """Where :class:`Autosaver` saves: a :class:`tui.store.Store`, or a writer's sink."""

    def save_entry(self, conversation_id: str, entry: ContextEntry) -> None: ...


class Autosaver:
    """Saves a streaming reply at most once per ``interval`` seconds, and on :meth:`flush`.

    Call :meth:`update` after every piece of text and :meth:`flush` when the reply ends,
    is stopped or fails; a crash then loses at most ``interval`` seconds of the reply.
    """

    def __init__(self, store: EntrySink, conversation_id: str, interval: float = 1.0) -> None:
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


@dataclass
class _Sink:
    writer: StoreWriter
    conversation: Conversation
    context: Context

    def save_entry(self, conversation_id: str, entry: ContextEntry) -> None:
        self.writer.save(self.conversation, self.context, entry)


@dataclass
class _State:
    queue: deque[Job] = field(default_factory=deque)
    running: bool = False
    """The thread is writing the head of the queue."""
    failing: StoreError | None = None
    attempt: int = 0
    written: int = 0
    """Changes written since the queue was last empty."""
    kick: bool = False
    closed: bool = False
    gave_up: bool = False
    stopped: bool = False
    """The thread has ended: changes are written directly."""


class StoreWriter:
    """Ordered, non-blocking writes for the app (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        on_event: Callable[[WriterEvent], None],
        *,
        retry_after: Sequence[float] = RETRY_AFTER_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.on_event = on_event
        self.retry_after = tuple(retry_after)
        self.poll_s = poll_s
        self._memory = Memory()
        self._known: set[tuple[str, str]] = set()
        """(conversation id, entry id) of entries handed to the store by this writer."""
        self._state = _State()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="history-writer", daemon=True)
        self._thread.start()

    # What the app calls ----------------------------------------------------------------------
    def create(self, conversation: Conversation, entries: Sequence[ContextEntry] = ()) -> None:
        """Store a new conversation with its first entries (system prompts)."""
        self._known.update((conversation.id, entry.id) for entry in entries)
        self._submit(CreateJob(conversation, tuple(snapshot(entry) for entry in entries)))

    def save(self, conversation: Conversation, context: Context, entry: ContextEntry) -> None:
        """Store ``entry`` (new: after the entries before it in ``context``) as it is now."""
        key = (conversation.id, entry.id)
        before: tuple[ContextEntry, ...] | None = None
        if key not in self._known:
            self._known.add(key)
            entries = context.entries
            index = next(
                (i for i in range(len(entries) - 1, -1, -1) if entries[i] is entry), len(entries)
            )
            before = tuple(snapshot(e) for e in entries[:index])
        self._submit(SaveJob(conversation, snapshot(entry), before))

    def sink(self, conversation: Conversation, context: Context) -> EntrySink:
        """An :class:`EntrySink` (for :class:`Autosaver`) that saves through :meth:`save`."""
        return _Sink(self, conversation, context)

    def delete_entries(self, conversation: Conversation, entry_ids: Sequence[str]) -> None:
        self._known.difference_update((conversation.id, entry_id) for entry_id in entry_ids)
        self._submit(DeleteJob(conversation, tuple(entry_ids)))

    def rename(self, conversation_id: str, title: str) -> None:
        self._submit(RenameJob(conversation_id, title))

    def delete_conversation(self, conversation_id: str) -> None:
        self._submit(RemoveJob(conversation_id))

    def current(self, conversation: Conversation) -> Conversation:
        """The conversation this window's changes to ``conversation`` now go to."""
        return self._memory.target(conversation)

    @property
    def pending(self) -> int:
        """Changes not saved yet."""
        with self._cond:
            return len(self._state.queue)

    def overlay(self, conversation_id: str, context: Context) -> Context:
        """``context`` as read from the store, with this window's unsaved changes applied."""
        with self._cond:
            jobs = list(self._state.queue)
        entries = context.entries
        for job in jobs:
            if isinstance(job, SaveJob) and self.current(job.conversation).id == conversation_id:
                index = next((i for i, e in enumerate(entries) if e.id == job.entry.id), None)
                if index is None:
                    entries.append(snapshot(job.entry))
                else:
                    entries[index] = snapshot(job.entry)
            elif (
                isinstance(job, DeleteJob) and self.current(job.conversation).id == conversation_id
            ):
                entries[:] = [e for e in entries if e.id not in job.entry_ids]
        return context

    def retry(self) -> None:
        """Try the waiting changes again now."""
        with self._cond:
            self._state.kick = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting to be written; False if it still is after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._state.queue or self._state.gave_up, timeout
            )

    def close(self, timeout: float | None = None) -> int:
        """Write what waits (one more try for a failing change), then stop the thread.

        Returns how many changes could not be saved. Changes made afterwards are written
        directly (waiting for the lock), as by the store itself.
        """
        with self._cond:
            self._state.closed = True
            self._state.kick = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return self.pending

    # Writing -------------------------------------------------------------------------------
    def _emit(self, event: WriterEvent | None) -> None:
        if event is not None:
            self.on_event(event)

    def _submit(self, job: Job) -> None:
        state = self._state
        with self._cond:
            if state.stopped:
                self._write_now(job)
                return
            if not state.queue and quick(job):
                try:
                    with self.store.no_wait():
                        event = job.run(self.store, self._memory)
                except StoreBusyError:
                    pass  # the thread waits for the lock
                except StoreError as error:
                    if not retryable(error):
                        self._emit(Dropped(error))
                        return
                    state.queue.append(job)
                    self._failed(error)
                    self._cond.notify_all()  # the thread waits to try again
                    return
                else:
                    self._emit(event)
                    return
            last = state.queue[-1] if state.queue else None
            if (
                isinstance(job, SaveJob)
                and isinstance(last, SaveJob)
                and not (state.running and len(state.queue) == 1)
                and last.entry.id == job.entry.id
                and last.conversation.id == job.conversation.id
            ):
                last.entry = job.entry  # a newer state of the same streaming entry
            else:
                state.queue.append(job)
            state.kick = True
            self._cond.notify_all()

    def _write_now(self, job: Job) -> None:
        try:
            self._emit(job.run(self.store, self._memory))
        except StoreError as error:
            self._emit(Dropped(error))

    def _failed(self, error: StoreError) -> None:
        """Called with the lock held: the head of the queue could not be written."""
        state = self._state
        first = state.failing is None
        state.failing = error
        state.attempt += 1
        if first:
            self._emit(WriteFailed(error, len(state.queue)))

    def _loop(self) -> None:
        state = self._state
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    state.stopped = True
                    self._cond.notify_all()
                    return
                state.running = True
            try:
                event = job.run(self.store, self._memory)
            except StoreError as error:
                with self._cond:
                    state.running = False
                    if retryable(error):
                        self._failed(error)
                        if state.closed:
                            state.gave_up = state.stopped = True
                            self._cond.notify_all()
                            return
                        continue
                    state.queue.popleft()
                self._emit(Dropped(error))
                continue
            except Exception as exc:  # a bug: report it, go on with the next change
                with self._cond:
                    state.running = False
                    state.queue.popleft()
                self._emit(Dropped(StoreError(reason=f"{type(exc).__name__}: {exc}")))
                continue
            with self._cond:
                state.running = False
                state.queue.popleft()
                state.written += 1
                done = not state.queue
                state.kick = not done  # it worked: go on with the rest at once
                # Reported before anyone waiting for the queue to empty wakes up.
                self._emit(event)
                if done:
                    if state.failing is not None:
                        self._emit(WritesResumed(state.written))
                    self._emit(Written())
                    state.failing, state.attempt, state.written = None, 0, 0
                    self._cond.notify_all()

    def _next_job(self) -> Job | None:
        """With the lock held: wait for the next change to write (None: stop)."""
        state = self._state
        while True:
            if state.queue and (state.failing is None or state.kick):
                state.kick = False
                return state.queue[0]
            if state.closed:
                return None
            if state.failing is not None:
                delay = self.retry_after[min(state.attempt, len(self.retry_after)) - 1]
                if not self._cond.wait(delay):
                    state.kick = True  # time to try again
                continue
            quiet = not self._cond.wait(self.poll_s) and not state.queue
            if quiet and self.store.changed_elsewhere():
                self._emit(ChangedElsewhere())
