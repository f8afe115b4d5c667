"""Benchmark of the history store (run by hand: ``python tests/bench/bench_store.py``).

Fills a temporary history with N conversations of M entries (~2.4 kB each), then times
opening it (which runs PRAGMA quick_check), listing, searching, loading a conversation
and the per-second ``save_entry`` of a streaming reply as it grows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from backends.context import ContextEntry, Role
from tui.store import Store


def timed(label: str, runs: int, action: object) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"{label:<34} median {statistics.median(samples):8.2f} ms   p95 {p95:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--entries", type=int, default=40)
    args = parser.parse_args()
    words = [f"w{i}" for i in range(5000)]
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.db"
        start = time.perf_counter()
        with Store(path) as store:
            ids = []
            for number in range(args.conversations):
                conversation = store.create_conversation(f"conversation {number}", "mock", "m")
                ids.append(conversation.id)
                for index in range(args.entries):
                    role = Role.USER if index % 2 == 0 else Role.ASSISTANT
                    text = " ".join(rng.choices(words, k=400))
                    store.save_entry(conversation.id, ContextEntry(role, text))
        fill = time.perf_counter() - start
        total = args.conversations * args.entries
        print(f"filled {total} entries in {fill:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")

        timed("open (with quick_check)", 5, lambda: Store(path).close())
        with Store(path) as store:
            timed("list_conversations", 10, store.list_conversations)
            timed("search 'w17 w42'", 20, lambda: store.search("w17 w42"))
            timed("load_context", 20, lambda: store.load_context(ids[7]))
            reply = ContextEntry(Role.ASSISTANT, "", complete=False)

            def grow_and_save() -> None:
                reply.append_text(" ".join(rng.choices(words, k=20)))
                store.save_entry(ids[7], reply)

            timed("save_entry (reply growing to ~25 kB)", 200, grow_and_save)


if __name__ == "__main__":
    main()
