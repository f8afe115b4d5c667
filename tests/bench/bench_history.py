"""Long history: a conversation of 2,000 messages opens fast and memory stays small.

Run by hand: ``python tests/bench/bench_history.py [--messages 2000] [--runs 7]``.

The history database gets one conversation of ``--messages`` messages (questions and
Markdown replies of realistic length, a few long ones) and a few short conversations.
Then, in fresh processes running the real entry point headless (100x30):

* launch: from starting the process until the chat screen shows the long conversation
  (it is the latest) with the prompt focused and the screen drawn;
* switch: in the running app, from opening the long conversation (from a short one, as
  a click in the list does) until it is on screen, drawn (median of ``--runs``);
* earlier: showing the older messages window by window (``Up`` at the top) 10 times;
* memory: the process's peak resident set size (``ru_maxrss``) at the end.

Targets (issue 7): the conversation opens in under 1 s, the process stays under 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROSE = (
    "the app stores every message in SQLite and draws only what the screen shows while "
    "the model streams its reply token by token over the local network"
)

DRIVER = r"""
import asyncio, json, resource, sys, time
from tui.app import SpeziChatApp

RUNS = int(sys.argv[1])
_run = SpeziChatApp.run
report = {}

async def drawn(app):
    from tui.widgets.reply import Segment
    log = app.screen.log_view
    while True:
        done = asyncio.Event()
        app.screen.call_after_refresh(done.set)
        await done.wait()
        if all(s.built or not s.region.overlaps(log.region) for s in log.query(Segment)):
            return

async def bench(pilot):
    from tui.screens.chat import ChatScreen
    app = pilot.app
    while not (isinstance(app.screen, ChatScreen) and app.focused is app.screen.prompt):
        await asyncio.sleep(0.001)
    await drawn(app)
    print("ready", flush=True)
    screen = app.screen
    long_id = screen.conversation.id
    report["shown_items"] = len(screen.log_view.items())
    short_id = next(c.id for c in app.store.list_conversations() if c.id != long_id)
    switch = []
    for _ in range(RUNS):
        await screen.open_conversation(short_id)
        await drawn(app)
        await asyncio.sleep(0.3)
        start = time.perf_counter()
        await screen.open_conversation(long_id)
        await drawn(app)
        switch.append(time.perf_counter() - start)
    report["switch"] = switch
    earlier = []
    for _ in range(10):
        start = time.perf_counter()
        await screen.log_view.show_earlier()
        await drawn(app)
        earlier.append(time.perf_counter() - start)
    report["earlier"] = earlier
    report["items_after_earlier"] = len(screen.log_view.items())
    report["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report), flush=True)
    app.exit()

def run(self, **kwargs):
    return _run(self, headless=True, size=(100, 30), auto_pilot=bench)

SpeziChatApp.run = run
from tui.cli import main
sys.exit(main([]))
"""

SETUP = r"""
import json, sys
from backends.context import Context
from tui.settings import Settings
from tui.store import Store

messages = json.loads(sys.stdin.read())
settings = Settings()
settings.general.backend = "mock"
settings.general.model = "mock"
settings.save()
with Store.open_default() as store:
    for n in range(5):
        short = store.create_conversation(f"Short chat {n}", "mock", "mock")
        context = Context.with_system(["Be brief."])
        context.append_user(f"Hello {n}")
        context.append_assistant("Hi!", complete=True)
        for entry in context:
            store.save_entry(short.id, entry)
    long = store.create_conversation("A very long conversation", "mock", "mock")
    context = Context.with_system(["You are a helpful assistant."])
    for question, answer in messages:
        context.append_user(question)
        context.append_assistant(answer, complete=True)
    store.save_context(long.id, context)
    print(len(store.load_context(long.id)) - 1)
"""


def conversation(messages: int, seed: int = 3) -> list[tuple[str, str]]:
    """Question and answer pairs: short questions, Markdown answers, now and then long."""
    rng = random.Random(seed)
    words = PROSE.split()

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."

    pairs = []
    for index in range(messages // 2):
        question = " ".join(sentence() for _ in range(rng.randint(1, 3)))
        blocks = []
        for _ in range(rng.choice([1, 2, 3, 4, 12]) if index % 25 else 40):
            kind = rng.random()
            if kind < 0.6:
                blocks.append(" ".join(sentence() for _ in range(rng.randint(1, 4))))
            elif kind < 0.8:
                blocks.append("\n".join(f"- {sentence()}" for _ in range(rng.randint(2, 5))))
            else:
                blocks.append("```python\nfor item in items:\n    print(item)\n```")
        pairs.append((question, "\n\n".join(blocks)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--launches", type=int, default=5)
    args = parser.parse_args()
    pairs = conversation(args.messages)
    launches: list[float] = []
    reports: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env[name] = str(Path(folder) / name.lower())
        stored = subprocess.run(
            [sys.executable, "-c", SETUP],
            input=json.dumps(pairs),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        database = Path(env["XDG_DATA_HOME"]) / "spezichat" / "history.db"
        for index in range(args.launches + 1):
            start = time.perf_counter()
            with subprocess.Popen(
                [sys.executable, "-c", DRIVER, str(args.runs)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            ) as process:
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    raise SystemExit("the app did not show the conversation")
                launch = time.perf_counter() - start
                report = json.loads(process.stdout.readline())
                process.wait()
            if index:  # the first launch warms the page cache and bytecode
                launches.append(launch)
                reports.append(report)
        size_mb = database.stat().st_size / 2**20
    switch = [s for report in reports for s in report["switch"]]  # type: ignore[attr-defined]
    earlier = [s for report in reports for s in report["earlier"]]  # type: ignore[attr-defined]
    rss = max(float(report["maxrss_mb"]) for report in reports)  # type: ignore[arg-type]
    characters = sum(len(q) + len(a) for q, a in pairs)
    print(
        f"long history benchmark: {stored} messages ({characters / 1e6:.1f} M characters, "
        f"database {size_mb:.1f} MiB), headless 100x30"
    )
    print(
        f"  launch to the conversation on screen  {statistics.median(launches):.3f} s"
        f"  [{min(launches):.3f}-{max(launches):.3f}], {args.launches} launches"
    )
    print(
        f"  open it from another conversation     {statistics.median(switch):.3f} s"
        f"  [{min(switch):.3f}-{max(switch):.3f}] (target < 1 s)"
    )
    print(
        f"  show 16 earlier messages              {statistics.median(earlier):.3f} s"
        f"  [{min(earlier):.3f}-{max(earlier):.3f}], "
        f"{reports[-1]['items_after_earlier']} items on screen after 10 times"
    )
    print(f"  peak resident memory                  {rss:.0f} MB (target < 250 MB)")


if __name__ == "__main__":
    main()
