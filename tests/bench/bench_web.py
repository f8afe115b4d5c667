"""``spezichat web``: time to the chat screen, and key-to-echo latency, browser vs terminal.

Run by hand: ``python tests/bench/bench_web.py [--runs 5] [--keys 20]`` (needs Debian's
``chromium`` and Playwright: see ``tests/web/browser.py``).

* open to chat (browser): a new tab opens the URL of a running ``spezichat web``; the time
  runs from the start of the navigation (the page's ``performance`` clock) until the
  websocket frame that draws the chat screen's prompt arrives in the page. This includes
  loading the page and its scripts and starting a fresh app process for the tab.
* launch to chat (terminal): the real app on a pseudo-terminal, from starting the process
  until the prompt is drawn.
* key to echo: a letter is typed into the prompt and the time runs until the app's output
  with the typed text arrives: in the browser, from the page's ``keydown`` to the
  websocket frame (both on the page's clock, so Playwright adds nothing); in the terminal,
  from writing the key to the pty to reading the echo. Keys are typed one at a time, each
  after the previous echo; the median of ``--keys`` keys is reported.

The settings (mock backend) live in temporary XDG directories.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.terminal import Terminal  # noqa: E402
from tests.web.browser import (  # noqa: E402
    Tab,
    browser_missing,
    chromium,
    process_ended,
    save_mock_settings,
    visible,
    wait_until,
    web_server,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SETTLE_S = 1.0
"""Pause after the chat is drawn (the app finishes starting) before the first key."""
PACE_S = 0.05
"""Pause between an echo and the next key (a fast typist: 20 keys a second at most)."""


def browser_open_to_chat(tab: Tab) -> float:
    tab.wait_for_chat()
    for frame in tab.frames():
        if "Message" in frame.text:
            return frame.at_ms / 1000
    raise AssertionError("the chat frame was not recorded")


def browser_key_echo(tab: Tab, keys: int) -> list[float]:
    latencies: list[float] = []
    typed = ""
    tab.page.wait_for_timeout(SETTLE_S * 1000)
    for index in range(keys):
        letter = LETTERS[index % len(LETTERS)]
        typed += letter
        tab.page.wait_for_timeout(PACE_S * 1000)
        seen = len(tab.frames())
        tab.page.keyboard.press(letter)
        tab.wait_for(
            lambda typed=typed, seen=seen: any(
                typed in frame.text for frame in tab.frames()[seen:]
            ),
            f"the echo of {typed!r}",
        )
        pressed = tab.page.evaluate("window.__keys[window.__keys.length - 1][0]")
        echoed = next(frame.at_ms for frame in tab.frames()[seen:] if typed in frame.text)
        latencies.append((echoed - pressed) / 1000)
    return latencies


def terminal_launch_and_echo(keys: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    term = Terminal(columns=150, rows=50)
    try:
        while "Message" not in term.text():
            if term.process.poll() is not None:
                raise SystemExit(f"the app exited:\n{term.text()[-2000:]}")
            time.sleep(0.001)
        launched = time.perf_counter() - start
        latencies: list[float] = []
        typed = ""
        time.sleep(SETTLE_S)
        for index in range(keys):
            letter = LETTERS[index % len(LETTERS)]
            typed += letter
            time.sleep(PACE_S)
            seen = len(term.output)
            sent = time.perf_counter()
            term.type(letter)
            while typed not in _visible(bytes(term.output[seen:])):
                if time.perf_counter() - sent > 30:
                    raise SystemExit(f"no echo of {typed!r} in the terminal")
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - sent)
        return launched, latencies
    finally:
        term.close()


def _visible(data: bytes) -> str:
    return visible(data.decode("utf-8", "replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="tabs opened (and terminals)")
    parser.add_argument("--keys", type=int, default=20, help="keys typed in each")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        raise SystemExit(f"bench_web: {missing}")
    opened: list[float] = []
    web_echo: list[float] = []
    launched: list[float] = []
    term_echo: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            os.environ[name] = str(Path(folder) / name.lower())
        save_mock_settings()
        with web_server() as server, chromium() as browser:
            for _ in range(args.runs):
                tab = Tab(browser, server.url)
                opened.append(browser_open_to_chat(tab))
                web_echo += browser_key_echo(tab, args.keys)
                apps = server.app_pids()
                tab.close()
                wait_until(lambda apps=apps: all(map(process_ended, apps)), "the app ended")
            server.stop()
        for _ in range(args.runs):
            seconds, latencies = terminal_launch_and_echo(args.keys)
            launched.append(seconds)
            term_echo += latencies
    print(f"web benchmark: {args.runs} runs, {args.keys} keys each (medians, min-max)")
    rows = (
        ("browser: open URL to chat drawn", opened),
        ("terminal: launch to chat drawn", launched),
        ("browser: key to echo", web_echo),
        ("terminal: key to echo", term_echo),
    )
    for label, values in rows:
        print(
            f"  {label:<34} {statistics.median(values) * 1000:7.1f} ms  "
            f"[{min(values) * 1000:.1f}-{max(values) * 1000:.1f}]"
        )
    print(f"  (first tab, cold: {opened[0] * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
