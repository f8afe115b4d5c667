"""Running a fog node: llama-cpp-python's OpenAI-compatible server, TLS, a key, mDNS.

:func:`serve` loads a GGUF model into ``llama_cpp.server`` (extra
``llama-cpp-python[server]``), serves it with uvicorn over TLS with the certificate from
``spezichat fog init``, requires the API key as bearer token, and advertises the node
over mDNS once the port is open. Stopping (Ctrl+C, SIGTERM, or cancelling the task)
shuts the server down and unregisters the service with goodbye packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import ConfigurationError
from backends.fog.advertise import DEFAULT_NAME, FogAdvertiser, local_addresses
from backends.fog.certs import NodeCertificates
from backends.fog.config import DEFAULT_HOST

API_KEY_FILE = Path("auth") / "api_key"
"""Where ``fog init`` stores the node's API key, relative to the node directory."""


def create_api_key(path: Path, *, overwrite: bool = False) -> str:
    """Write a new random API key to ``path`` (mode 0600) and return it."""
    import os

    if path.exists() and not overwrite:
        return read_api_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "fog-" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key


def read_api_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"The API key file {path} could not be read.",
            reason=exc.strerror or str(exc),
            suggestion="Run `spezichat fog init` to create it, or pass --api-key.",
        ) from exc
    if not key:
        raise ConfigurationError(
            f"The API key file {path} is empty.",
            reason="A fog node needs a non-empty key that clients send as bearer token.",
            suggestion="Write a key into the file, or run `spezichat fog init --force`.",
        )
    return key


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How to run one fog node."""

    model: Path
    """The GGUF file to serve."""
    alias: str = ""
    """Model id clients use and /v1/models lists; empty: the file name without .gguf."""
    certificates: NodeCertificates | None = None
    """Server certificate and key; ``None`` serves plain HTTP (development)."""
    api_key: str | None = None
    """Bearer token clients must send; ``None`` lets anyone in (development)."""
    listen: str = "0.0.0.0"
    port: int = 8443
    advertise: bool = True
    name: str = DEFAULT_NAME
    """mDNS instance name."""
    host: str = DEFAULT_HOST
    """Host name advertised over mDNS (the certificate's name)."""
    interfaces: tuple[str, ...] = ()
    """Interface addresses to advertise on; empty: all of this machine's addresses."""
    chat_format: str | None = None
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    verbose: bool = False

    @property
    def model_id(self) -> str:
        return self.alias or self.model.name.removesuffix(".gguf")


def _advertised_addresses(options: ServeOptions) -> list[str]:
    """Addresses clients can reach the listening socket on."""
    addresses = local_addresses(options.interfaces)
    if options.listen in ("0.0.0.0", ""):
        return [a for a in addresses if ":" not in a]
    if options.listen in ("::",):
        return addresses
    return [options.listen]


def build_app(options: ServeOptions) -> Any:
    """The llama-cpp-python FastAPI app for ``options`` (loads the model)."""
    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as exc:
        raise ConfigurationError(
            "The fog node server is not installed.",
            reason=f"llama-cpp-python's server extra is missing ({exc.name}).",
            suggestion="Install it: pip install 'spezichat[server]'.",
        ) from exc
    if not options.model.is_file():
        raise ConfigurationError(
            f"The model file {options.model} does not exist.",
            reason="`spezichat fog serve` needs a GGUF model file on this machine.",
            suggestion="Pass the path of a .gguf file with --model "
            "(`spezichat download` fetches one).",
        )
    server_settings = ServerSettings(
        host=options.listen,
        port=options.port,
        api_key=options.api_key,
        # One node serves many clients: a new request must not cut off a running one.
        interrupt_requests=False,
    )
    model_settings = ModelSettings(
        model=str(options.model),
        model_alias=options.model_id,
        chat_format=options.chat_format,
        n_ctx=options.n_ctx,
        n_gpu_layers=options.n_gpu_layers,
        verbose=options.verbose,
    )
    return create_app(server_settings=server_settings, model_settings=[model_settings])


def mask_token(token: str) -> str:
    """Enough of a token to tell tokens apart in a log, not enough to use it."""
    return f"…{token[-4:]}" if len(token) > 8 else "…"


def log_requests(app: Any, log: Callable[[str], None]) -> Any:
    """Wrap an ASGI app to report each request and the bearer token it carried (masked)."""

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or ())
            auth = headers.get(b"authorization", b"").decode("latin-1")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            sent = f"bearer token {mask_token(token)}" if token else "no bearer token"
            client = (scope.get("client") or ("?",))[0]
            log(f"{scope.get('method')} {scope.get('path')} from {client} with {sent}")
        await app(scope, receive, send)

    return logged


async def serve(
    options: ServeOptions,
    *,
    on_ready: Callable[[str, FogAdvertiser | None], None] | None = None,
    on_request: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Run the node until cancelled or interrupted; advertise it while it runs.

    ``on_ready(url, advertiser)`` is called once the port is open and the node is
    advertised; ``on_request(line)`` for every request (token masked).
    """
    import uvicorn

    app = await asyncio.to_thread(build_app, options)
    if on_request is not None:
        app = log_requests(app, on_request)
    certs = options.certificates
    config = uvicorn.Config(
        app,
        host=options.listen,
        port=options.port,
        ssl_certfile=str(certs.server_cert) if certs else None,
        ssl_keyfile=str(certs.server_key) if certs else None,
        log_level=log_level,
        lifespan="off",
        # Ctrl+C means stop: idle keep-alive clients must not hold the node up for long.
        timeout_graceful_shutdown=1,
    )
    server = _server_class()(config)
    sock = bind_socket(options.listen, options.port)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if task.done():
            task.result()  # raises what stopped the server
            raise ConfigurationError(
                "The fog node server stopped while starting.",
                reason="uvicorn ended before it accepted connections (see the log above).",
                suggestion="Check the certificate files and the model, then start again.",
            )
        scheme = "https" if certs else "http"
        url = f"{scheme}://{options.listen}:{options.port}"
        if options.advertise:
            advertiser = FogAdvertiser(
                options.port,
                tls=certs is not None,
                name=options.name,
                host=options.host,
                interfaces=options.interfaces,
                addresses=_advertised_addresses(options),
                properties={"model": options.model_id},
            )
            async with advertiser:
                if on_ready is not None:
                    on_ready(url, advertiser)
                await asyncio.shield(task)
        else:
            if on_ready is not None:
                on_ready(url, None)
            await asyncio.shield(task)
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 10)
        sock.close()


def _server_class() -> type[Any]:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server that leaves signal handling to the caller.

        Ctrl+C then cancels the caller's task, which unregisters the mDNS service before
        the server shuts down, instead of uvicorn re-raising the signal afterwards.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


def bind_socket(listen: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a busy port is reported clearly."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listen, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"The fog node cannot listen on {listen}:{port}.",
            reason=f"{exc.strerror or exc}: the port is in use, or the address is not one of "
            "this machine's.",
            suggestion="Pick another --port (or --listen address), or stop the program "
            "that uses it.",
        ) from exc
    sock.set_inheritable(True)
    return sock


def default_listen(interfaces: Sequence[str]) -> str:
    """Listen on the one interface given, else on every IPv4 address."""
    return interfaces[0] if len(interfaces) == 1 else "0.0.0.0"
