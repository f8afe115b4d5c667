"""MCP servers: start-up with servers configured, and a trivial tool call's round trip.

Run by hand: ``python tests/bench/bench_mcp.py [--runs 7] [--calls 50]``.

* start-up: launch to an interactive chat screen (see bench_startup.py), with no MCP
  server and with three stdio servers configured, alternating. The servers start when
  the first reply needs them, so the two should not differ (beyond noise).
* tool call: from the model's tool call (the ``ToolCallRequested`` event of a session on
  the loopback OpenAI server) to its result (``ToolCallResult``), for the demo server's
  ``echo`` over stdio and over streamable HTTP (uvicorn on 127.0.0.1); the first call
  of each is left out (the SDK's first request). Medians and the 90th percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_startup import prepare, time_to_chat  # noqa: E402

DEMO = ROOT / "tests" / "mcp" / "demo_server.py"
LABELS = (("stdio (demo__echo)", "demo__echo"), ("HTTP (web__echo)", "web__echo"))


def startup(runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"no MCP server": [], "three MCP servers": []}
    with tempfile.TemporaryDirectory() as plain, tempfile.TemporaryDirectory() as with_mcp:
        env_plain = prepare(Path(plain))
        env_mcp = prepare(Path(with_mcp))
        config = Path(with_mcp) / "config" / "spezichat" / "config.toml"
        with config.open("a", encoding="utf-8") as file:
            for name in ("one", "two", "three"):
                file.write(
                    f'\n[mcp.servers.{name}]\ncommand = "{sys.executable}"\n'
                    f'args = ["{DEMO}", "--name", "{name}"]\n'
                )
        for index in range(runs + 1):
            timings = (time_to_chat(env_plain), time_to_chat(env_mcp))
            if index:
                for key, value in zip(results, timings, strict=True):
                    results[key].append(value)
    return results


async def tool_calls(calls: int) -> dict[str, list[float]]:
    import socket
    import threading

    import uvicorn

    from backends.events import ToolCallRequested, ToolCallResult
    from backends.mcp import McpManager, parse_server
    from backends.openai import OpenAIPlatform, OpenAISchema
    from tests.mcp.demo_server import app
    from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    http = uvicorn.Server(
        uvicorn.Config(app("web").streamable_http_app(), log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not http.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    with tempfile.TemporaryDirectory() as logs:
        mcp = McpManager(
            [
                parse_server("demo", {"command": sys.executable, "args": [str(DEMO)]}),
                parse_server("web", {"url": url}),
            ],
            log_dir=Path(logs),
        )
        mcp.start()
        await mcp.wait()
        results: dict[str, list[float]] = {"stdio (demo__echo)": [], "HTTP (web__echo)": []}
        with OpenAITestServer(api_key="sk-bench") as server:
            platform = OpenAIPlatform(base_url=server.base_url, api_key="sk-bench")
            schema = OpenAISchema(model="gpt-test", functions=mcp.tools(), test_model_access=False)
            for label, name in LABELS:
                for index in range(calls + 1):
                    server.script(
                        Reply(tool_calls=[ScriptedCall(name, {"text": "ping"})]), Reply(text="ok")
                    )
                    session = platform.session(schema)
                    session.context.append_user("go")
                    asked = 0.0
                    async for event in session.stream():
                        if isinstance(event, ToolCallRequested):
                            asked = time.perf_counter()
                        elif isinstance(event, ToolCallResult):
                            assert event.content == "ping", event.content
                            if index:
                                results[label].append(time.perf_counter() - asked)
            await platform.aclose()
        await mcp.aclose()
    http.should_exit = True
    thread.join(10)
    return results


def report(title: str, results: dict[str, list[float]], unit: float, suffix: str) -> None:
    print(title)
    for label, values in results.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(
            f"  {label:<22} median {statistics.median(values) * unit:7.1f} {suffix}  "
            f"p90 {p90 * unit:7.1f} {suffix}  [{ordered[0] * unit:.1f}-{ordered[-1] * unit:.1f}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    report(f"launch to chat screen, {args.runs} runs each", startup(args.runs), 1000, "ms")
    calls = asyncio.run(tool_calls(args.calls))
    report(f"tool call to result, {args.calls} calls each", calls, 1000, "ms")


if __name__ == "__main__":
    main()
