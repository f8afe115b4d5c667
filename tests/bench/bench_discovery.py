"""Benchmark: how long a client takes to find a fog node on loopback (target: median < 1.5 s).

Run by hand: ``python tests/bench/bench_discovery.py [--runs 15] [--pause 1.2]``.

A node is advertised by another process (``spezichat fog advertise`` on 127.0.0.1, as a
real node would be) in front of a TLS test server with certificates from ``fog init``.
Each run starts a fresh :class:`~backends.fog.discovery.FogBrowser` (new zeroconf
instance, empty cache) and measures two times: until the node is in the list (mDNS
browse and resolve), and until its health check (GET /v1/models over TLS with the token)
has passed. Runs are spaced by ``--pause`` seconds because mDNS responders answer the
same record at most once per second (RFC 6762, section 6).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backends.fog.auth import StaticToken  # noqa: E402
from backends.fog.certs import create_node_certificates  # noqa: E402
from backends.fog.config import FogConfig  # noqa: E402
from backends.fog.discovery import FogBrowser  # noqa: E402
from tests.fog.conftest import server_context  # noqa: E402
from tests.support.openai_server import OpenAITestServer  # noqa: E402

TOKEN = "bench-token-0123456789"


async def one_run(config: FogConfig, name: str) -> tuple[float, float]:
    start = time.perf_counter()
    found = checked = float("nan")
    async with FogBrowser(config) as browser:
        if await browser.wait_for(lambda nodes: any(n.name == name for n in nodes), 10):
            found = time.perf_counter() - start
        if await browser.wait_for(lambda nodes: any(n.status == "ok" for n in nodes), 10):
            checked = time.perf_counter() - start
    return found, checked


def summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"{label:<28} median {statistics.median(values) * 1000:7.1f} ms   "
        f"p90 {p90 * 1000:7.1f} ms   min {ordered[0] * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pause", type=float, default=1.2, help="seconds between runs")
    args = parser.parse_args()

    name = f"SpeziLLMFog bench {uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        certs = create_node_certificates(Path(tmp) / "node")
        with OpenAITestServer(
            api_key=TOKEN, models=("bench-model",), ssl_context=server_context(certs)
        ) as server:
            node = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tui", "fog", "advertise"),
                    *("--port", str(server.port), "--tls", "--name", name),
                    *("--interface", "127.0.0.1"),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                assert node.stdout is not None
                for line in node.stdout:
                    if "Press Ctrl+C" in line:
                        break
                time.sleep(args.pause)  # past the announcements: a node that has been up
                config = FogConfig(
                    ca_cert=certs.ca_cert,
                    token=StaticToken(TOKEN),
                    service_names=(name,),
                    interfaces=("127.0.0.1",),
                )
                found: list[float] = []
                checked: list[float] = []
                for _ in range(args.runs):
                    first, ok = asyncio.run(one_run(config, name))
                    found.append(first)
                    checked.append(ok)
                    time.sleep(args.pause)
            finally:
                node.terminate()
                node.wait(10)
    print(f"{args.runs} runs, node advertised by another process on 127.0.0.1")
    print(summary("found (mDNS browse+resolve)", found))
    print(summary("found and health-checked", checked))
    verdict = "OK" if statistics.median(found) < 1.5 else "SLOWER THAN TARGET"
    print(f"target: median time to find < 1500 ms -> {verdict}")


if __name__ == "__main__":
    main()
