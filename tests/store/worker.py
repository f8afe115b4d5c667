"""A separate spezichat-like process for the multi-process store tests.

``python -m tests.store.worker stream DB INTERVAL`` streams a long mock reply and
autosaves it, printing ``saved <chars>`` after every save (the test kills it mid-way).
``python -m tests.store.worker write DB NAME COUNT`` waits for a line on stdin, then
opens the store and writes COUNT exchanges as fast as it can.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from backends.context import ContextEntry, Role
from tui.store import Autosaver, Store

LONG_REPLY = " ".join(f"word{i}" for i in range(50_000))
PIECES_PER_REPLY = 5


async def stream(path: Path, interval: float) -> None:
    from backends.mock import MockPlatform, MockSchema
    from backends.runner import Runner

    store = Store(path)
    conversation = store.create_conversation("crash test", "mock", "mock")
    async with Runner([MockPlatform()]) as runner:
        session = runner.session(MockSchema(responses=(LONG_REPLY,), delay=0.0005))
        user = session.context.append_user("Tell me a very long story.")
        store.save_entry(conversation.id, user)  # before the request goes out
        print("conversation", conversation.id, flush=True)
        saver = Autosaver(store, conversation.id, interval=interval)
        async for _piece in session.generate():
            entry = session.context.streaming_entry()
            assert entry is not None
            if saver.update(entry):
                print("saved", len(entry.content), flush=True)
    print("finished", flush=True)


def write(path: Path, name: str, count: int) -> None:
    sys.stdin.readline()  # start together with the other workers
    store = Store(path)
    conversation = store.create_conversation(name, "mock", "mock")
    for index in range(count):
        store.save_entry(
            conversation.id, ContextEntry(Role.USER, f"{name} question {index} token{name}")
        )
        reply = ContextEntry(Role.ASSISTANT, complete=False)
        for piece in range(PIECES_PER_REPLY):
            reply.append_text(f"{name} answer {index} part {piece} ")
            store.save_entry(conversation.id, reply)
        reply.complete = True
        reply.finish_reason = "stop"
        store.save_entry(conversation.id, reply)
        if index % 10 == 0:
            store.list_conversations()
            store.search(f"token{name}")
    store.close()
    print("done", conversation.id, flush=True)


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    if mode == "stream":
        asyncio.run(stream(path, float(sys.argv[3])))
    else:
        write(path, sys.argv[3], int(sys.argv[4]))


if __name__ == "__main__":
    main()
