"""The inference process of a fog node: llama-cpp-python's server on a socket it inherits.

:func:`backends.fog.serve.serve` binds the node's port, starts
``python -m backends.fog.node_worker`` with the socket, and sends the options as one JSON
line on its standard input (the API key too: never on the command line, where other
users' ``ps`` would show it). The worker loads the model, serves over TLS and writes JSON
lines on its standard output: ``{"ready": note}`` once it accepts connections and
``{"request": line}`` for every request. ``{"op": "stop"}`` on standard input shuts it
down; the end of standard input (the node process is gone) ends it at once.

A crash in llama.cpp ends only this process: the node process stops advertising and
starts a new worker in safe mode (:mod:`backends.local.safemode`).
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from backends.fog.serve import ServeOptions, build_app, log_requests, quiet_server
from backends.local import safemode


def options_to_dict(options: ServeOptions) -> dict[str, Any]:
    certs = options.certificates
    return {
        "model": str(options.model),
        "alias": options.alias,
        "cert": str(certs.server_cert) if certs else None,
        "key": str(certs.server_key) if certs else None,
        "api_key": options.api_key,
        "listen": options.listen,
        "port": options.port,
        "chat_format": options.chat_format,
        "n_ctx": options.n_ctx,
        "n_gpu_layers": options.n_gpu_layers,
        "verbose": options.verbose,
    }


def _options(data: dict[str, Any]) -> ServeOptions:
    return ServeOptions(
        model=Path(data["model"]),
        alias=data["alias"],
        api_key=data["api_key"],
        listen=data["listen"],
        port=int(data["port"]),
        chat_format=data["chat_format"],
        n_ctx=int(data["n_ctx"]),
        n_gpu_layers=int(data["n_gpu_layers"]),
        verbose=bool(data["verbose"]),
        advertise=False,
    )


async def _run(data: dict[str, Any], sock: socket.socket, out: TextIO) -> None:
    import uvicorn

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    options = _options(data)
    extra, note = safemode.resolve(safemode.check_mode(data.get("extra_buffers", "auto")))
    with safemode.extra_buffer_types(extra):
        app = await asyncio.to_thread(build_app, options)
    if data.get("log_requests"):
        app = log_requests(app, lambda line: send({"request": line}))
    config = uvicorn.Config(
        app,
        ssl_certfile=data["cert"],
        ssl_keyfile=data["key"],
        log_level=data.get("log_level", "info"),
        lifespan="off",
        # Stop means stop: idle keep-alive clients must not hold the node up for long.
        timeout_graceful_shutdown=1,
    )
    server = quiet_server(config)
    loop = asyncio.get_running_loop()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if '"stop"' in line:
                loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        os._exit(0)  # the node process is gone: nobody would advertise or stop us

    threading.Thread(target=watch_stdin, name="node-worker-stdin", daemon=True).start()
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if not task.done():
        send({"ready": note})
    await task


def main() -> int:
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the node process's
    faulthandler.enable()
    data = json.loads(sys.stdin.readline())
    sock = socket.socket(fileno=int(data["fd"]))
    asyncio.run(_run(data, sock, out))
    return 0


__all__ = ["options_to_dict"]

if __name__ == "__main__":
    sys.exit(main())
