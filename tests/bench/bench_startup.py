"""Start-up: `spezichat --version`, and from launch to an interactive chat screen.

Run by hand: ``python tests/bench/bench_startup.py [--runs 11]``.

* ``--version``: wall time of the ``spezichat`` console script installed next to this
  Python (or ``python -m tui`` when there is none), next to a bare ``python -c pass``.
* launch to chat: a fresh process runs the real entry point (``tui.cli.main([])``: the
  settings, the history store, the runner, the app) headless, with an existing config
  (onboarded, mock backend) and a history of a few conversations. The time runs from
  starting the process until the chat screen is shown with the prompt focused and the
  screen has been drawn once; the process prints "ready" then.

Processes are started one after another, alternating, after one warm-up round (page
cache, bytecode); medians are reported. Targets (issue 7): < 0.15 s and < 0.6 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in the measured process: the real entry point, with App.run made headless and
# an auto-pilot that reports when the chat screen is ready and quits.
DRIVER = r"""
import asyncio, sys
from tui.app import SpeziChatApp

_run = SpeziChatApp.run

async def ready(pilot):
    from tui.screens.chat import ChatScreen
    app = pilot.app
    while not (isinstance(app.screen, ChatScreen) and app.focused is app.screen.prompt):
        await asyncio.sleep(0.001)
    drawn = asyncio.Event()
    app.screen.call_after_refresh(drawn.set)
    await drawn.wait()
    print("ready", flush=True)
    app.exit()

def run(self, **kwargs):
    return _run(self, headless=True, size=(100, 30), auto_pilot=ready)

SpeziChatApp.run = run
import tui.commands.app
tui.commands.app.terminal_problem = lambda: None  # headless: no terminal needed
from tui.cli import main
sys.exit(main([]))
"""


def prepare(home: Path) -> dict[str, str]:
    """An onboarded config (mock backend) and a small history, in their own folders."""
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    setup = r"""
from backends.context import Context
from tui.settings import Settings
from tui.store import Store
settings = Settings()
settings.general.backend = "mock"
settings.general.model = "mock"
settings.save()
with Store.open_default() as store:
    for n in range(20):
        conversation = store.create_conversation(f"Chat {n}", "mock", "mock")
        context = Context.with_system(["Be brief."])
        for i in range(10):
            context.append_user(f"Question {i} of chat {n}?")
            context.append_assistant(f"Answer {i}: **some** text and `code`.", complete=True)
        for entry in context:
            store.save_entry(conversation.id, entry)
"""
    subprocess.run([sys.executable, "-c", setup], env=env, cwd=ROOT, check=True)
    return env


def time_command(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def time_to_chat(env: dict[str, str]) -> float:
    start = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", DRIVER], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.perf_counter() - start
        process.wait()
    if line.strip() != "ready" or process.returncode:
        raise SystemExit(f"the app did not reach the chat screen: {line!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    # The script pip installed next to this interpreter (not a shim such as pyenv's).
    beside = Path(sys.executable).with_name("spezichat")
    script = str(beside) if beside.exists() else shutil.which("spezichat")
    version = [script, "--version"] if script else [sys.executable, "-m", "tui", "--version"]
    bare = [sys.executable, "-c", "pass"]
    results: dict[str, list[float]] = {"python -c pass": [], "version": [], "chat": []}
    with tempfile.TemporaryDirectory() as folder:
        env = prepare(Path(folder))
        for index in range(args.runs + 1):
            timings = (time_command(bare, env), time_command(version, env), time_to_chat(env))
            if index:  # the first round warms the page cache and bytecode
                for key, value in zip(results, timings, strict=True):
                    results[key].append(value)
    median = {key: statistics.median(values) for key, values in results.items()}
    print(f"start-up benchmark: {args.runs} runs each (medians, min-max)")
    rows = [
        ("python -c pass (floor)", "python -c pass", None),
        ("spezichat --version" if script else "python -m tui --version", "version", 0.15),
        ("launch to chat screen (headless)", "chat", 0.6),
    ]
    for label, key, target in rows:
        values = results[key]
        verdict = "" if target is None else ("  ok" if median[key] < target else "  OVER")
        limit = "" if target is None else f" (target < {target:.2f} s)"
        print(
            f"  {label:<34} {median[key]:.3f} s  [{min(values):.3f}-{max(values):.3f}]"
            f"{limit}{verdict}"
        )


if __name__ == "__main__":
    main()
