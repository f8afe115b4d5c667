"""Benchmark: tokens per second through spezichat's local session vs llama-cpp-python.

Run by hand: ``python tests/bench/bench_local.py [--model PATH] [--runs 7] [--tokens 96]``.

Both sides use the same loaded model (the same llama.cpp context), the same messages and
the same sampling parameters (greedy, fixed seed), so they generate the same tokens.
Runs alternate between the two sides; the median tokens per second of each is reported
with their ratio (target: spezichat >= 0.97x direct). Without --model it uses the
Gemma 3 270M starter from its package. ``--n-gpu-layers`` sets the offload (default:
all layers when the llama-cpp-python build supports a GPU).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.local.models import ModelStore
from backends.local.platform import LocalPlatform, LocalSchema, gpu_offload_supported

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def direct(llama: Any, messages: list[dict[str, str]], sampling: dict[str, Any]) -> float:
    """Tokens per second calling llama-cpp-python's streaming chat completion directly."""
    start = time.perf_counter()
    count = 0
    for chunk in llama.create_chat_completion(messages=messages, stream=True, **sampling):
        if chunk["choices"][0]["delta"].get("content"):
            count += 1
    return count / (time.perf_counter() - start)


async def through_spezichat(platform: LocalPlatform, schema: LocalSchema) -> float:
    """Tokens per second streaming a reply through a spezichat session."""
    session = platform.session(schema)
    session.context.append_user(PROMPT)
    start = time.perf_counter()
    count = 0
    async for _piece in session.generate():
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the Gemma 270M starter)")
    parser.add_argument("--chat-format", default="", help='default "gemma" for the starter')
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--n-gpu-layers", type=int, default=None)
    parser.add_argument("--n-ctx", type=int, default=1024)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = ModelStore(folder)
        model = args.model or str(store.ensure_starter())
        chat_format = args.chat_format or ("gemma" if not args.model else "")
        schema = LocalSchema(
            model=model,
            chat_format=chat_format,
            n_ctx=args.n_ctx,
            n_gpu_layers=args.n_gpu_layers,
            max_tokens=args.tokens,
            temperature=0.0,
            seed=1,
        )
        platform = LocalPlatform(store=store)
        loaded = platform.model(schema)
        llama = loaded.llama
        messages = [{"role": "user", "content": PROMPT}]
        sampling = schema.sampling()
        print(
            f"model {Path(model).name}  n_ctx {loaded.n_ctx}  n_gpu_layers "
            f"{loaded.n_gpu_layers} (GPU build: {gpu_offload_supported()})  "
            f"max_tokens {args.tokens}  runs {args.runs}"
        )
        # Warm up both paths once (first-call allocations, page cache).
        direct(llama, messages, sampling)
        asyncio.run(through_spezichat(platform, schema))

        direct_rates: list[float] = []
        ours: list[float] = []
        for run in range(args.runs):
            # Alternate which side goes first so drift affects both equally.
            if run % 2 == 0:
                direct_rates.append(direct(llama, messages, sampling))
                ours.append(asyncio.run(through_spezichat(platform, schema)))
            else:
                ours.append(asyncio.run(through_spezichat(platform, schema)))
                direct_rates.append(direct(llama, messages, sampling))
        platform.unload_all()

    d, s = statistics.median(direct_rates), statistics.median(ours)
    # Each pair ran back to back, so its ratio is least disturbed by other load.
    paired = statistics.median(o / r for o, r in zip(ours, direct_rates, strict=True))
    print("direct    " + " ".join(f"{r:6.1f}" for r in direct_rates) + "  tok/s")
    print("spezichat " + " ".join(f"{r:6.1f}" for r in ours) + "  tok/s")
    print(f"median: direct {d:.1f} tok/s, spezichat {s:.1f} tok/s, ratio {s / d:.3f}")
    print(f"median of the per-pair ratios: {paired:.3f}")


if __name__ == "__main__":
    main()
