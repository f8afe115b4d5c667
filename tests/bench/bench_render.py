"""Rendering: a long reply streamed into the chat screen vs a bare loop consuming it.

Run by hand: ``python tests/bench/bench_render.py [--tokens 10000] [--runs 5]``.

The loopback server (``_sse_server``) sends a pre-rendered stream of a realistic
Markdown reply (headings, paragraphs, lists, code blocks) as fast as it can. Runs are
interleaved and medians reported:

* bare: a minimal httpx + httpx-sse loop reading the same stream (the baseline);
* client: spezichat's OpenAI session consuming it without a UI;
* app: the real app (headless, 120x40): from Enter in the prompt until the whole reply
  is stored, drawn with its final ``Markdown.update`` and the screen has settled.

While the app streams, a probe task on its event loop sleeps 10 ms again and again and
records how late it wakes up: the longest overshoot is the longest stall a user would
feel (a key press waits that long). The same is done for twice the tokens, to show the
cost grows linearly (ratio 2.0), not quadratically.

Targets (issue 7): app <= 1.5x bare, longest stall < 50 ms, 2x tokens <= 2x time.

``--paced 100 --seconds 10`` instead streams one reply at a model's speed (the test
server of ``tests/support`` sleeping between chunks) and reports the stalls.

``--first 7`` instead measures the first reply after launch (3,000 tokens, as fast as
the server sends them) in fresh processes, 1.5 s after the chat screen is up (the user
typing), with the app's warm-up thread and without it (a benchmark-only switch): the
first reply is where imports and first-use preparation would stall the app.

``--floor`` instead measures what any Textual app pays on this machine: a minimal app
(one scrolling container, nothing else) reads the stream with the bare loop, drawing
nothing meanwhile, then shows the last screenful of the reply once, as plain text, as
Rich's Markdown renderable in a ``Static``, and as Textual's ``Markdown`` widget (the
one spezichat uses), until that frame is drawn. Ratios are against the bare loop alone.

``--large-code 20000 200000`` instead streams a reply holding one code block of that many
lines (in chunks of 256 characters, as fast as the server sends them), each size in a
fresh process, then reopens the stored conversation in a new app (a restart). For both
it reports the time until the screen is drawn, the longest stall, how long keys take
until the screen shows what they did (five typed into the prompt; Ctrl+Up to the reply,
``b`` to copy its code block, Escape back), the rows that code blocks take in the
layout, and the memory (resident once drawn, and the peak of the process). Targets
(issue 13): keys < 100 ms; rows and memory that do not grow with the block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._sse_server import MODEL, SSEServer

_PROSE = (
    "the model streams tokens into the terminal while the user reads along and the "
    "event loop keeps every key responsive so that stopping a reply always works a "
    "conversation is stored in SQLite and search finds every message quickly fog "
    "nodes serve models on the local network with their own certificate authority "
    "and tokens"
)
WORDS = _PROSE.split()

CODE = [
    "def fetch(url: str, retries: int = 3) -> bytes:",
    '    """Download ``url``, retrying on transient errors."""',
    "    for attempt in range(retries):",
    "        try:",
    "            with urlopen(url, timeout=10) as response:",
    "                return response.read()",
    "        except OSError as exc:",
    '            log.warning("attempt %d failed: %s", attempt, exc)',
    "            time.sleep(2 ** attempt)",
    '    raise RuntimeError(f"giving up on {url}")',
]


def realistic_reply(tokens: int, seed: int = 7) -> list[str]:
    """Pieces of a Markdown reply, about one token each, ``tokens`` of them."""
    rng = random.Random(seed)
    blocks: list[str] = []
    count = 0

    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        if rng.random() < 0.3:
            words[rng.randrange(len(words))] = f"`{rng.choice(WORDS)}()`"
        if rng.random() < 0.3:
            words[rng.randrange(len(words))] = f"**{rng.choice(WORDS)}**"
        return " ".join(words).capitalize() + "."

    section = 0
    while count < tokens:
        kind = rng.random()
        if count == 0 or kind < 0.08:
            section += 1
            block = f"## Part {section}: {' '.join(rng.choice(WORDS) for _ in range(3))}"
        elif kind < 0.5:
            block = " ".join(sentence() for _ in range(rng.randint(2, 5)))
        elif kind < 0.72:
            marker = "-" if rng.random() < 0.6 else "1."
            items = [f"{marker} {sentence()}" for _ in range(rng.randint(3, 6))]
            block = "\n".join(items)
        else:
            start = rng.randrange(len(CODE) - 4)
            lines = CODE[start : start + rng.randint(4, len(CODE) - start)]
            block = "```python\n" + "\n".join(lines) + "\n```"
        blocks.append(block)
        count += len(tokenize(block)) + 1
    pieces = tokenize("\n\n".join(blocks))
    return pieces[:tokens]


def tokenize(text: str) -> list[str]:
    """Split like a tokenizer roughly does: words with their leading space, newlines."""
    return re.findall(r"\n| *[^ \n]+| +", text)


def render_body(pieces: list[str]) -> bytes:
    """The chat-completions SSE stream of ``pieces`` (one chunk each), usage, ``[DONE]``."""
    base: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return "data: " + json.dumps({**base, "choices": [choice]}) + "\n\n"

    lines = [chunk({"role": "assistant", "content": ""})]
    lines += [chunk({"content": piece}) for piece in pieces]
    lines.append(chunk({}, "stop"))
    usage = {"prompt_tokens": 5, "completion_tokens": len(pieces), "total_tokens": 5}
    lines.append("data: " + json.dumps({**base, "choices": [], "usage": usage}) + "\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


@dataclass
class Probe:
    """Measures how late a 10 ms sleep wakes up on the running loop."""

    lags: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - start - 0.01)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class AppRun:
    seconds: float
    max_stall: float
    p99_stall: float
    blocks: int
    """Markdown blocks built at the end (the rest of the reply waits off screen)."""


@dataclass
class Row:
    tokens: int
    size_kb: float
    bare: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    app: list[AppRun] = field(default_factory=list)

    @property
    def app_median(self) -> float:
        return statistics.median(run.seconds for run in self.app)


PROMPT = "Write a long answer."


async def bare_consume(http: Any, url: str) -> float:
    """The baseline: a minimal httpx + httpx-sse loop (warm client) reading the stream."""
    start = time.perf_counter()
    await bare_read(http, url)
    return time.perf_counter() - start


async def bare_read(http: Any, url: str) -> str:
    """The bare loop: the reply's text, read with httpx + httpx-sse and nothing else."""
    from httpx_sse import aconnect_sse

    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    pieces: list[str] = []
    async with aconnect_sse(http, "POST", url + "/chat/completions", json=body) as source:
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                break
            for choice in json.loads(event.data).get("choices") or ():
                piece = choice["delta"].get("content")
                if piece:
                    pieces.append(piece)
    return "".join(pieces)


async def client_consume(app: Any) -> float:
    """spezichat's session for the app's backend (warm platform), drained without a UI."""
    session = app.make_session()
    session.context.append_user(PROMPT)
    start = time.perf_counter()
    async for _ in session.stream():
        pass
    return time.perf_counter() - start


async def app_reply(app: Any, text: str) -> AppRun:
    """One reply in a new chat: from Enter until the screen shows all of it, drawn."""
    from textual.widgets.markdown import MarkdownBlock

    from tui.widgets.messages import AssistantMessage
    from tui.widgets.reply import Segment

    screen = app.screen
    await screen.action_new_chat()
    screen.prompt.text = PROMPT
    await asyncio.sleep(0.2)  # let the app settle
    log = screen.log_view
    probe = Probe()
    probe.start()
    start = time.perf_counter()
    screen.prompt.action_send()  # what Enter does (pilot.press would wait for idle)
    while screen.generating or not log.query(AssistantMessage):
        await asyncio.sleep(0.001)
    while True:  # until a refresh of the screen shows only built segments
        refreshed = asyncio.Event()
        screen.call_after_refresh(refreshed.set)
        await refreshed.wait()
        parts = log.query(Segment)
        if all(part.built or not part.region.overlaps(log.region) for part in parts):
            break
    seconds = time.perf_counter() - start
    await probe.stop()
    reply = log.query(AssistantMessage).last()
    assert reply.text == text, "the reply differs from what was sent"
    assert reply.body.source == text, "the Markdown drawn differs from what was sent"
    for part in reply.query(Segment):
        if part.markdown is not None:
            assert part.markdown.source == part.text, "a drawn segment is not its text"
    stored = app.store.load_context(screen.conversation.id)
    assert stored.entries[-1].content == text and stored.entries[-1].complete
    lags = sorted(probe.lags) or [0.0]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return AppRun(seconds, lags[-1], p99, len(reply.query(MarkdownBlock)))


async def measure_in_app(tokens: int, runs: int, size: tuple[int, int], url: str) -> Row:
    import httpx

    from backends.runner import Runner
    from tui.app import SpeziChatApp
    from tui.settings import Settings
    from tui.store import Store

    pieces = realistic_reply(tokens)
    text = "".join(pieces)
    row = Row(tokens, len(text) / 1024)
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = MODEL
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "history.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=size), httpx.AsyncClient(timeout=60) as http:
            for index in range(runs + 1):
                run = await app_reply(app, text)
                # The user reads the reply: the app's postponed garbage collection runs now,
                # not in the middle of the baseline measurements.
                await asyncio.sleep(1.5)
                bare = await bare_consume(http, url)
                client = await client_consume(app)
                if index:  # the first round warms connections, caches and the model check
                    row.bare.append(bare)
                    row.client.append(client)
                    row.app.append(run)
    return row


def measure(tokens: int, runs: int, size: tuple[int, int]) -> Row:
    pieces = realistic_reply(tokens)
    server = SSEServer(0)
    server.body = render_body(pieces)
    with server:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        return asyncio.run(measure_in_app(tokens, runs, size, server.base_url))


async def paced_reply(rate: float, seconds: float, size: tuple[int, int]) -> AppRun:
    """A reply at the speed of a model (``rate`` tokens a second) through the app."""
    from backends.runner import Runner
    from tests.support.openai_server import OpenAITestServer, Reply
    from tui.app import SpeziChatApp
    from tui.settings import Settings
    from tui.store import Store

    text = "".join(realistic_reply(int(rate * seconds)))
    chunk = max(1, round(len(text) / (rate * seconds)))  # characters of about one token
    with OpenAITestServer(api_key="sk-bench") as server:
        server.script(Reply(text=PROMPT), Reply(text=text, chunk_size=chunk, delay=1 / rate))
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        settings = Settings()
        settings.general.backend = "openai"
        settings.general.model = "gpt-test"
        with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "h.db") as store:
            app = SpeziChatApp(settings=settings, store=store, runner=Runner())
            async with app.run_test(size=size):
                await client_consume(app)  # warms the connection and the model check
                return await app_reply(app, text)


FIRST_TOKENS = 3_000
TYPING_S = 1.5


async def first_in_app(size: tuple[int, int], url: str) -> AppRun:
    """A fresh app's first reply, sent after the user took TYPING_S to type it."""
    from backends.runner import Runner
    from tui.app import SpeziChatApp
    from tui.settings import Settings
    from tui.store import Store

    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = MODEL
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "h.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=size):
            await asyncio.sleep(TYPING_S)
            return await app_reply(app, "".join(realistic_reply(FIRST_TOKENS)))


def first_child(warm: bool, size: tuple[int, int]) -> None:
    """In a fresh process: one first reply; prints its figures as JSON."""
    if not warm:
        import tui.screens.chat

        tui.screens.chat.WARM_UP_AFTER_S = 1e9  # never, within the run
    server = SSEServer(0)
    server.body = render_body(realistic_reply(FIRST_TOKENS))
    with server:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        run = asyncio.run(first_in_app(size, server.base_url))
    print(json.dumps({"seconds": run.seconds, "stall": run.max_stall}))


def first_replies(runs: int, size: tuple[int, int]) -> None:
    import subprocess

    results: dict[str, list[dict[str, float]]] = {"with warm-up": [], "without": []}
    for index in range(runs * 2):
        warm = index % 2 == 0
        command = [sys.executable, __file__, "--first-child", "warm" if warm else "cold"]
        command += ["--width", str(size[0]), "--height", str(size[1])]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results["with warm-up" if warm else "without"].append(json.loads(output.splitlines()[-1]))
    print(f"first reply after launch: {FIRST_TOKENS} tokens, {runs} fresh processes each")
    for kind, values in results.items():
        seconds = statistics.median(value["seconds"] for value in values) * 1000
        stalls = sorted(round(value["stall"] * 1000) for value in values)
        print(
            f"  {kind:<13} Enter to fully drawn {seconds:6.0f} ms (median); "
            f"longest stall median {statistics.median(stalls)} ms, all runs {stalls}"
        )


def last_screenful(text: str, width: int, height: int) -> str:
    """The end of ``text`` from a block boundary on, about ``height`` rows at ``width``."""
    from tui.widgets.segments import estimate_rows, split_markdown

    parts = split_markdown(text)
    tail = ""
    while parts and estimate_rows(tail, width) < height:
        tail = parts.pop() + tail
    return tail


async def measure_floor(tokens: int, runs: int, size: tuple[int, int], url: str) -> None:
    import httpx
    from rich.markdown import Markdown as RichMarkdown
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widget import Widget
    from textual.widgets import Static

    from tui.widgets.reply import ReplyMarkdown

    class Minimal(App[None]):
        def compose(self) -> ComposeResult:
            yield VerticalScroll()

    kinds: dict[str, Any] = {
        "bare loop, nothing drawn": None,
        "+ last screen, plain text": lambda text: Static(text, markup=False),
        "+ last screen, Rich Markdown": lambda text: Static(RichMarkdown(text)),
        "+ last screen, Textual Markdown": ReplyMarkdown,
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    app = Minimal()
    async with app.run_test(size=size), httpx.AsyncClient(timeout=60) as http:
        view = app.query_one(VerticalScroll)

        async def frame() -> None:
            drawn = asyncio.Event()
            app.screen.call_after_refresh(drawn.set)
            await drawn.wait()

        for index in range(runs + 1):
            for kind, make in kinds.items():
                await view.remove_children()
                await frame()
                await asyncio.sleep(0.3)
                start = time.perf_counter()
                text = await bare_read(http, url)
                if make is not None:
                    widget: Widget = make(last_screenful(text, size[0], size[1]))
                    await view.mount(widget)
                    view.scroll_end(animate=False)
                    await frame()
                if index:
                    times[kind].append(time.perf_counter() - start)
    bare = statistics.median(times["bare loop, nothing drawn"])
    print(f"floor: {tokens} tokens, {runs} runs (medians), minimal app {size[0]}x{size[1]}")
    for kind, values in times.items():
        median = statistics.median(values)
        print(f"  {kind:<34} {median * 1000:7.1f} ms  x{median / bare:.2f}")
    print("target for the whole app: x1.5")


def floor(tokens: int, runs: int, size: tuple[int, int]) -> None:
    server = SSEServer(0)
    server.body = render_body(realistic_reply(tokens))
    with server:
        asyncio.run(measure_floor(tokens, runs, size, server.base_url))


LARGE_PIECE = 256
"""Characters per streamed chunk of the large code block."""


def large_code_reply(lines: int) -> str:
    """A reply holding one Python code block of ``lines`` lines."""
    code = "".join(f"{CODE[i % len(CODE)]}  # {i}\n" for i in range(lines))
    return f"Here is the whole file:\n\n```python\n{code}```\n\nThat is all of it.\n"


def memory_mb() -> tuple[float, float]:
    """Resident memory of this process now and at its peak, in MiB (Linux)."""
    import resource

    status = Path("/proc/self/status").read_text()
    now = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def next_frame(app: Any) -> None:
    drawn = asyncio.Event()
    app.screen.call_after_refresh(drawn.set)
    await drawn.wait()


async def press(app: Any, key: str, done: Any) -> float:
    """Seconds from ``key`` until ``done()`` holds and the screen shows it."""
    from textual import events

    start = time.perf_counter()
    app.post_message(events.Key(key, key if len(key) == 1 else None))
    while not done():
        await asyncio.sleep(0.0005)
    await next_frame(app)
    seconds = time.perf_counter() - start
    await asyncio.sleep(0.05)
    return seconds


async def key_latencies(app: Any, text: str) -> dict[str, Any]:
    """Keys typed into the prompt; Ctrl+Up to the reply, ``b`` to copy its code, Escape."""
    from tui.widgets.messages import AssistantMessage, code_blocks

    screen = app.screen
    prompt = screen.prompt
    prompt.focus()
    await next_frame(app)
    typing = []
    for _ in range(5):
        before = prompt.text
        typing.append(await press(app, "x", lambda before=before: prompt.text != before))
    prompt.text = ""
    reply = screen.log_view.query(AssistantMessage).last()
    select = await press(app, "ctrl+up", lambda: app.focused is reply)
    copy = await press(app, "b", lambda: bool(app.clipboard))
    assert app.clipboard == code_blocks(text)[0], "the copied block differs"
    back = await press(app, "escape", lambda: app.focused is prompt)
    return {"typing": typing, "select": select, "copy": copy, "back": back}


def drawn_code_rows(app: Any) -> int:
    """Rows that the widgets drawing code blocks take in the conversation's layout."""
    from textual.widgets.markdown import MarkdownFence

    from tui.widgets.code import CodeBlock

    widgets = [*app.screen.query(MarkdownFence), *app.screen.query(CodeBlock)]
    return sum(widget.outer_size.height for widget in widgets)


async def until_drawn(app: Any) -> None:
    """Until a refresh of the screen shows only built segments of the last reply."""
    from tui.widgets.reply import Segment

    log = app.screen.log_view
    while True:
        await next_frame(app)
        parts = log.query(Segment)
        if parts and all(part.built or not part.region.overlaps(log.region) for part in parts):
            return


async def large_phase(app: Any, text: str, *, stream: bool) -> dict[str, Any]:
    probe = Probe()
    probe.start()
    start = time.perf_counter()
    if stream:
        await app_reply(app, text)
    else:
        await until_drawn(app)
    seconds = time.perf_counter() - start
    await probe.stop()
    await asyncio.sleep(1.0)
    rss, _peak = memory_mb()
    keys = await key_latencies(app, text)
    _rss, peak = memory_mb()
    return {
        "seconds": seconds,
        "stall": max(probe.lags, default=0.0),
        **keys,
        "rows": drawn_code_rows(app),
        "rss": rss,
        "peak": peak,
    }


async def large_in_app(lines: int, size: tuple[int, int], folder: str) -> dict[str, Any]:
    from backends.runner import Runner
    from tui.app import SpeziChatApp
    from tui.settings import Settings
    from tui.store import Store

    text = large_code_reply(lines)
    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = MODEL
    results: dict[str, Any] = {"lines": lines, "kib": len(text) / 1024}
    with Store(Path(folder) / "history.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=size):
            results["streamed"] = await large_phase(app, text, stream=True)
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=size):  # a restart: the conversation is reopened
            results["reopened"] = await large_phase(app, text, stream=False)
    return results


def large_child(lines: int, size: tuple[int, int]) -> None:
    """In a fresh process: one large code block, streamed then reopened; JSON figures."""
    text = large_code_reply(lines)
    pieces = [text[i : i + LARGE_PIECE] for i in range(0, len(text), LARGE_PIECE)]
    server = SSEServer(0)
    server.body = render_body(pieces)
    with server, tempfile.TemporaryDirectory() as folder:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        print(json.dumps(asyncio.run(large_in_app(lines, size, folder))))


def large_blocks(sizes: list[int], size: tuple[int, int]) -> None:
    import subprocess

    print(f"large code blocks: headless {size[0]}x{size[1]}, one fresh process each")
    print("typing: 5 keys into the prompt (median/max); select: Ctrl+Up to the reply;")
    print("copy: b (copy code) on it; back: Escape to the prompt. Key times in ms.")
    print("RSS: resident once drawn (before the keys); peak: of the process, keys included.")
    print(
        f"{'lines':>7} {'KiB':>6} {'phase':<9} {'drawn s':>7} {'stall ms':>8} "
        f"{'typing':>9} {'select':>7} {'copy':>6} {'back':>6} {'code rows':>9} "
        f"{'RSS MiB':>7} {'peak MiB':>8}"
    )
    for lines in sizes:
        command = [sys.executable, __file__, "--large-child", str(lines)]
        command += ["--width", str(size[0]), "--height", str(size[1])]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result = json.loads(output.splitlines()[-1])
        for phase in ("streamed", "reopened"):
            row = result[phase]
            typing = row["typing"]
            keys = f"{statistics.median(typing) * 1000:.0f}/{max(typing) * 1000:.0f}"
            print(
                f"{lines:>7} {result['kib']:>6.0f} {phase:<9} {row['seconds']:>7.2f} "
                f"{row['stall'] * 1000:>8.0f} {keys:>9} {row['select'] * 1000:>7.0f} "
                f"{row['copy'] * 1000:>6.0f} {row['back'] * 1000:>6.0f} {row['rows']:>9} "
                f"{row['rss']:>7.0f} {row['peak']:>8.0f}"
            )
    print("targets: keys < 100 ms; code rows and memory do not grow with the block")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--height", type=int, default=40)
    parser.add_argument(
        "--paced",
        type=float,
        metavar="TOKENS_PER_S",
        help="instead: stream for --seconds at this speed and report the stalls",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--floor", action="store_true", help="instead: what a minimal Textual app pays"
    )
    parser.add_argument(
        "--first", type=int, metavar="RUNS", help="instead: the first reply after launch"
    )
    parser.add_argument("--first-child", choices=("warm", "cold"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--large-code",
        type=int,
        nargs="+",
        metavar="LINES",
        help="instead: replies with one code block of so many lines (streamed, reopened)",
    )
    parser.add_argument("--large-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = (args.width, args.height)
    if args.large_code or args.large_child:
        with tempfile.TemporaryDirectory() as home:
            for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
                os.environ[name] = str(Path(home) / name.lower())
            if args.large_child:
                large_child(args.large_child, size)
            else:
                large_blocks(args.large_code, size)
        return
    if args.first or args.first_child:
        with tempfile.TemporaryDirectory() as home:
            for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
                os.environ[name] = str(Path(home) / name.lower())
            if args.first_child:
                first_child(args.first_child == "warm", size)
            else:
                first_replies(args.first, size)
        return
    if args.floor:
        floor(args.tokens, args.runs, (args.width, args.height))
        return
    if args.paced:
        run = asyncio.run(paced_reply(args.paced, args.seconds, (args.width, args.height)))
        print(
            f"paced reply: {args.paced:g} tokens/s for {args.seconds:g} s, headless "
            f"{args.width}x{args.height}: longest stall {run.max_stall * 1000:.1f} ms, "
            f"p99 {run.p99_stall * 1000:.1f} ms, Enter to fully drawn {run.seconds:.2f} s"
        )
        return
    with tempfile.TemporaryDirectory() as home:
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            os.environ[name] = str(Path(home) / name.lower())
        size = (args.width, args.height)
        rows = [measure(n, args.runs, size) for n in (args.tokens, args.tokens * 2)]
    print(f"render benchmark: {args.runs} runs each (medians), headless {size[0]}x{size[1]}")
    print("stall max: the longest over all runs; run median: the median of each run's longest")
    print(
        f"{'tokens':>7} {'KiB':>5} {'bare s':>7} {'client s':>8} {'app s':>7} "
        f"{'app/bare':>8} {'stall max ms':>12} {'(run median)':>12} {'p99 ms':>6}"
    )
    for row in rows:
        bare = statistics.median(row.bare)
        stall = max(run.max_stall for run in row.app) * 1000
        typical = statistics.median(run.max_stall for run in row.app) * 1000
        p99 = statistics.median(run.p99_stall for run in row.app) * 1000
        print(
            f"{row.tokens:>7} {row.size_kb:>5.0f} {bare:>7.3f} "
            f"{statistics.median(row.client):>8.3f} {row.app_median:>7.3f} "
            f"{row.app_median / bare:>8.2f} {stall:>12.1f} {typical:>12.1f} {p99:>6.1f}"
        )
    first, second = rows
    print(
        f"2x tokens: app time x{second.app_median / first.app_median:.2f} "
        f"(bare x{statistics.median(second.bare) / statistics.median(first.bare):.2f});"
        " targets: app/bare <= 1.5, max stall < 50 ms, 2x tokens <= x2.0"
    )


if __name__ == "__main__":
    main()
