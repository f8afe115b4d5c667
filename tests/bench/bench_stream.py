"""Client streaming: `spezichat ask` vs a bare httpx loop reading the same SSE stream.

Run by hand: ``python tests/bench/bench_stream.py [--tokens 20000] [--runs 7]``.

The loopback server sends a pre-rendered stream of N one-word chunks as fast as it can.
Two measurements, runs interleaved, medians reported:

* in-process (the target, <= 1.1x): the whole `spezichat ask` command (settings,
  platform, model access check, streaming, writing each piece to stdout) called through
  ``tui.cli.main`` vs the bare loop, each creating its own HTTP client, after imports are
  warm. Interpreter start-up is what ``bench_startup.py`` measures.
* end to end: both as fresh processes, start-up and imports included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._sse_server import MODEL, SSEServer

# The baseline: what a minimal hand-written client does (httpx + httpx-sse + json).
BARE = r"""
import asyncio, json, os, sys
import httpx
from httpx_sse import aconnect_sse

async def bare(url, model, out):
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with httpx.AsyncClient(timeout=60) as client:
        async with aconnect_sse(client, "POST", url + "/chat/completions", json=body) as source:
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    break
                chunk = json.loads(event.data)
                for choice in chunk.get("choices") or ():
                    piece = choice["delta"].get("content")
                    if piece:
                        out.write(piece)
                        out.flush()

if __name__ == "__main__":
    asyncio.run(bare(os.environ["URL"], os.environ["MODEL"], sys.stdout))
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def in_process(url: str, runs: int) -> tuple[list[float], list[float]]:
    import asyncio
    import contextlib

    from tui.cli import main as spezichat_main

    namespace: dict[str, object] = {"__name__": "bare"}
    exec(BARE, namespace)
    bare = namespace["bare"]
    argv = ["ask", "--backend", "openai", "--model", MODEL, "go"]
    ours, baseline = [], []
    with open(os.devnull, "w") as sink:
        for index in range(runs + 1):
            start = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                assert spezichat_main(argv) == 0
            mid = time.perf_counter()
            asyncio.run(bare(url, MODEL, sink))  # type: ignore[operator]
            end = time.perf_counter()
            if index:  # the first round warms imports and caches
                ours.append(mid - start)
                baseline.append(end - mid)
    return ours, baseline


def report(label: str, ours: list[float], baseline: list[float]) -> None:
    ours_median, bare_median = statistics.median(ours), statistics.median(baseline)
    print(
        f"  {label}: spezichat ask {ours_median:.3f} s, bare httpx loop {bare_median:.3f} s,"
        f" ratio {ours_median / bare_median:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with SSEServer(args.tokens) as server:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-bench",
            "URL": server.base_url,
            "MODEL": MODEL,
        }
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        inside = in_process(server.base_url, args.runs)
        ours = [sys.executable, "-m", "tui", "ask", "--backend", "openai", "--model", MODEL, "go"]
        bare = [sys.executable, "-c", BARE]
        # Warm the page cache and bytecode once, then interleave.
        timed(ours, env)
        timed(bare, env)
        spezichat, baseline = [], []
        for _ in range(args.runs):
            spezichat.append(timed(ours, env))
            baseline.append(timed(bare, env))
    print(f"stream of {args.tokens} tokens ({len(server.body) / 1e6:.1f} MB), {args.runs} runs")
    report("in-process (target <= 1.10)", *inside)
    report("end to end, fresh processes", spezichat, baseline)


if __name__ == "__main__":
    main()
