"""Benchmark: the on-device engine process vs llama-cpp-python called in-process.

Run by hand: ``python tests/bench/bench_local.py [--model PATH] [--runs 7] [--tokens 96]``.

1. Tokens per second. spezichat streams through its engine process; the direct side
   loads the same file in this process with the same load settings (context, offload,
   chat format, and the CPU extra buffer types the engine chose), and both generate the
   same tokens (greedy, fixed seed). Runs alternate; medians and the median of the
   per-pair ratios are reported (target: spezichat >= 0.97x direct).
2. Enter to first token for the first message, each side in a fresh process: spezichat
   starts the engine, which imports llama-cpp-python and loads the model; in-process,
   the first message imports llama-cpp-python and loads the model in the app itself.
3. Resident memory of the app (this side of the pipe) with no model and with one loaded,
   the engine's own, and an app that loads the model in-process.

Without --model it uses the Gemma 3 270M starter from its package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.local.models import ModelStore
from backends.local.platform import LocalPlatform
from backends.local.safemode import SafeModeMemory, extra_buffer_types
from backends.local.schema import LocalSchema

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
ROOT = Path(__file__).resolve().parents[2]


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


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# Measured in fresh processes (python bench_local.py --child KIND MODEL FORMAT N_CTX) ----
def child_first_token_spezichat(schema: LocalSchema) -> dict[str, float]:
    async def first() -> float:
        platform = LocalPlatform(safe_mode=SafeModeMemory(Path(tempfile.mkdtemp()) / "s.json"))
        app_rss = rss_mib()
        session = platform.session(schema)
        session.context.append_user(PROMPT)
        start = time.perf_counter()
        stream = session.generate()
        await stream.__anext__()
        elapsed = time.perf_counter() - start
        await stream.aclose()
        assert session.engine is not None
        result["app_rss_no_model"] = app_rss
        result["app_rss_loaded"] = rss_mib()
        result["engine_rss"] = rss_mib(session.engine.pid)
        await platform.aclose()
        return elapsed

    result: dict[str, float] = {}
    result["first_token"] = asyncio.run(first())
    return result


def child_first_token_in_process(schema: LocalSchema, extra: bool) -> dict[str, float]:
    start = time.perf_counter()
    import llama_cpp

    from backends.local.formats import register_formats

    register_formats()
    with extra_buffer_types(extra):
        llama = llama_cpp.Llama(
            schema.model, n_ctx=schema.n_ctx, chat_format=schema.chat_format, verbose=False
        )
    messages = [{"role": "user", "content": PROMPT}]
    for chunk in llama.create_chat_completion(messages=messages, stream=True, max_tokens=8):
        if chunk["choices"][0]["delta"].get("content"):
            break
    return {"first_token": time.perf_counter() - start, "app_rss_loaded": rss_mib()}


def fresh(kind: str, schema: LocalSchema, extra: bool) -> dict[str, float]:
    arguments = [kind, schema.model, schema.chat_format, str(schema.n_ctx), str(int(extra))]
    done = subprocess.run(
        [sys.executable, __file__, "--child", *arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the Gemma 270M starter)")
    parser.add_argument("--chat-format", default="", help='default "gemma" for the starter')
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--first-runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--n-gpu-layers", type=int, default=None)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, model, chat_format, n_ctx, extra = args.child
        schema = LocalSchema(model=model, chat_format=chat_format, n_ctx=int(n_ctx), seed=1)
        if kind == "spezichat":
            print(json.dumps(child_first_token_spezichat(schema)))
        else:
            print(json.dumps(child_first_token_in_process(schema, extra == "1")))
        return

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
        platform = LocalPlatform(store=store, safe_mode=SafeModeMemory(Path(folder) / "s.json"))
        info = platform.engine(schema).info
        assert info is not None
        import llama_cpp

        with extra_buffer_types(info.extra_buffers):
            llama = llama_cpp.Llama(
                model,
                n_ctx=info.n_ctx,
                n_batch=schema.n_batch,
                n_gpu_layers=info.n_gpu_layers,
                chat_format=info.chat_format,
                verbose=False,
            )
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        )
        print(
            f"{cpu}; model {Path(model).name}  n_ctx {info.n_ctx}  n_gpu_layers "
            f"{info.n_gpu_layers}  {info.extra_buffers_note}  max_tokens {args.tokens}  "
            f"runs {args.runs}"
        )
        messages = [{"role": "user", "content": PROMPT}]
        sampling = schema.sampling()
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
        llama.close()

        d, s = statistics.median(direct_rates), statistics.median(ours)
        paired = statistics.median(o / r for o, r in zip(ours, direct_rates, strict=True))
        print("direct    " + " ".join(f"{r:6.1f}" for r in direct_rates) + "  tok/s")
        print("spezichat " + " ".join(f"{r:6.1f}" for r in ours) + "  tok/s")
        print(f"median: direct {d:.1f} tok/s, spezichat {s:.1f} tok/s, ratio {s / d:.3f}")
        print(f"median of the per-pair ratios: {paired:.3f}")

        first_schema = LocalSchema(model=model, chat_format=chat_format, n_ctx=args.n_ctx)
        ours_first: list[dict[str, float]] = []
        theirs_first: list[dict[str, float]] = []
        for _ in range(args.first_runs):
            ours_first.append(fresh("spezichat", first_schema, info.extra_buffers))
            theirs_first.append(fresh("in-process", first_schema, info.extra_buffers))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(
        f"Enter to first token, first message (median of {args.first_runs} fresh "
        f"processes): spezichat {med(ours_first, 'first_token') * 1000:.0f} ms, in-process "
        f"{med(theirs_first, 'first_token') * 1000:.0f} ms"
    )
    print(
        f"resident memory: app without a model {med(ours_first, 'app_rss_no_model'):.0f} MiB, "
        f"with a model loaded {med(ours_first, 'app_rss_loaded'):.0f} MiB + engine "
        f"{med(ours_first, 'engine_rss'):.0f} MiB; in-process app with the model "
        f"{med(theirs_first, 'app_rss_loaded'):.0f} MiB"
    )


if __name__ == "__main__":
    main()
