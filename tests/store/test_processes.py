"""Real processes: several writers at once, and a ``kill -9`` while a reply streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from backends.context import Role
from tests.store.worker import LONG_REPLY, PIECES_PER_REPLY
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.worker", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_while_streaming_keeps_the_question_and_the_saved_part(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    process = _worker("stream", str(path), "0.02")
    try:
        assert process.stdout is not None
        first = process.stdout.readline().split()
        assert first[0] == "conversation", process.stderr.read() if process.stderr else ""
        conversation_id = first[1]
        saved: list[int] = []
        while len(saved) < 4:
            line = process.stdout.readline().split()
            assert line and line[0] == "saved", line
            saved.append(int(line[1]))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == -signal.SIGKILL  # it was still streaming

    with Store(path) as store:
        assert store.recovered_from is None
        assert store.check() == []
        context = store.load_context(conversation_id)
        user, reply = context
        assert (user.role, user.content) == (Role.USER, "Tell me a very long story.")
        assert reply.role is Role.ASSISTANT
        assert not reply.complete
        # Everything saved before the kill survived; the reply is a true prefix.
        assert len(reply.content) >= saved[-1] > saved[0] > 0
        assert LONG_REPLY.startswith(reply.content)
        assert len(reply.content) < len(LONG_REPLY)
        # The database still takes new writes.
        conversation = store.create_conversation("after the crash", "mock", "mock")
        assert store.list_conversations()[0].id == conversation.id


def test_concurrent_processes_write_without_corruption(tmp_path: Path) -> None:
    path = tmp_path / "history.db"  # created by the workers themselves, at the same time
    names = ("alpha", "bravo", "charlie")
    count = 30
    workers = [_worker("write", str(path), name, str(count)) for name in names]
    outputs = []
    for process in workers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in workers:
        out, err = process.communicate()
        assert process.returncode == 0, err
        outputs.append(out.split())

    with Store(path) as store:
        assert store.check() == []
        conversations = {c.title: c for c in store.list_conversations()}
        assert set(conversations) == set(names)
        for (done, conversation_id), name in zip(outputs, names, strict=True):
            assert done == "done"
            assert conversations[name].id == conversation_id
            assert conversations[name].message_count == 2 * count
            context = store.load_context(conversation_id)
            expected_reply = "".join(
                f"{name} answer {count - 1} part {piece} " for piece in range(PIECES_PER_REPLY)
            )
            assert [e.content for e in context][-2:] == [
                f"{name} question {count - 1} token{name}",
                expected_reply,
            ]
            assert [e.role for e in context] == [Role.USER, Role.ASSISTANT] * count
            assert all(e.complete for e in context)
            hits = store.search(f"token{name}", limit=1000)
            assert len(hits) == count
            assert {h.conversation_id for h in hits} == {conversation_id}
