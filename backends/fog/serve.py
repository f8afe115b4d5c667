"""Running a fog node: llama-cpp-python's OpenAI-compatible server, TLS, a key, mDNS.

:func:`serve` binds the node's port and runs the inference in a worker process
(:mod:`backends.fog.node_worker`): it loads a GGUF model into ``llama_cpp.server``
(extra ``llama-cpp-python[server]``) and serves it with uvicorn over TLS with the
certificate from ``spezichat fog init``, requiring the API key as bearer token. This
process advertises the node over mDNS while the worker accepts connections. If the
worker dies (a crash in llama.cpp, the out-of-memory killer), the node stops advertising
at once (goodbye packets), starts a new worker in safe mode and advertises again once it
serves; after too many deaths in a row it gives up with an error. Stopping (Ctrl+C,
SIGTERM, or cancelling the task) ends the worker and unregisters the service.
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
from backends.local.safemode import ExtraBuffers
from backends.secrets import check_secret

MAX_DEATHS = 3
"""Worker deaths within :data:`DEATH_WINDOW` seconds after which the node gives up."""
DEATH_WINDOW = 120.0

API_KEY_FILE = Path("auth") / "api_key"
"""Where ``fog init`` stores the node's API key, relative to the node directory."""


def create_api_key(path: Path, *, overwrite: bool = False) -> str:
    """Write a new random API key to ``path`` (atomically, mode 0600) and return it."""
    from backends.secrets import write_private_file

    if path.exists() and not overwrite:
        return read_api_key(path)
    key = "fog-" + secrets.token_urlsafe(32)
    write_private_file(path, key + "\n")
    return key


def read_api_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"The API key file {path} could not be read.",
            reason=exc.strerror or str(exc),
            suggestion="Create it (`create_api_key`), or pass the key (`ServeOptions.api_key`).",
        ) from exc
    if not key:
        raise ConfigurationError(
            f"The API key file {path} is empty.",
            reason="A fog node needs a non-empty key that clients send as bearer token.",
            suggestion="Write a key into the file, or create a new one "
            "(`create_api_key(overwrite=True)`).",
        )
    return check_secret(key, what="fog node API key", source=str(path))


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
    cpu_extra_buffers: ExtraBuffers = "auto"
    """llama.cpp's CPU extra buffer types: "auto" (off on AMX CPUs), "on" or "off"."""

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
            reason="A fog node serves a GGUF model file on this machine.",
            suggestion="Pass the path of a .gguf file (`ServeOptions.model`).",
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
    on_event: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Run the node until cancelled or interrupted; advertise it while its worker serves.

    ``on_ready(url, advertiser)`` is called once the port is open and the node is
    advertised; ``on_request(line)`` for every request (token masked); ``on_event(line)``
    when the worker dies and when a new one serves again.
    """
    scheme = "https" if options.certificates else "http"
    url = f"{scheme}://{options.listen}:{options.port}"
    sock = bind_socket(options.listen, options.port)
    deaths: list[float] = []
    mode: ExtraBuffers = options.cpu_extra_buffers
    loop = asyncio.get_running_loop()
    try:
        while True:
            async with _Worker(options, sock, mode, log_level, on_request) as worker:
                await worker.ready()
                if deaths and on_event is not None:
                    on_event(f"A new inference process (pid {worker.pid}) serves at {url}.")
                if options.advertise:
                    async with _advertiser(options) as advertiser:
                        if not deaths and on_ready is not None:
                            on_ready(url, advertiser)
                        elif on_event is not None:
                            on_event(f"Advertised again as '{advertiser.registered_name}'.")
                        how = await worker.wait()
                else:
                    if not deaths and on_ready is not None:
                        on_ready(url, None)
                    how = await worker.wait()
            deaths = [t for t in deaths if loop.time() - t < DEATH_WINDOW] + [loop.time()]
            if len(deaths) >= MAX_DEATHS:
                raise ConfigurationError(
                    "The fog node stopped: its inference process keeps dying.",
                    reason=f"It died {len(deaths)} times within {DEATH_WINDOW:.0f} s; the "
                    f"last one {how}.",
                    suggestion="Check the model file and the free memory; a smaller model "
                    "or context (`ServeOptions.n_ctx`) helps when memory runs out.",
                )
            mode = "off"
            if on_event is not None:
                on_event(
                    f"The inference process {how}; the node is no longer advertised. "
                    "Starting a new one with llama.cpp's CPU extra buffer types off "
                    "(safe mode)."
                )
    finally:
        sock.close()


def _advertiser(options: ServeOptions) -> FogAdvertiser:
    return FogAdvertiser(
        options.port,
        tls=options.certificates is not None,
        name=options.name,
        host=options.host,
        interfaces=options.interfaces,
        addresses=_advertised_addresses(options),
        properties={"model": options.model_id},
    )


class _Worker:
    """The inference process of a node (:mod:`backends.fog.node_worker`)."""

    def __init__(
        self,
        options: ServeOptions,
        sock: socket.socket,
        mode: ExtraBuffers,
        log_level: str,
        on_request: Callable[[str], None] | None,
    ) -> None:
        self._options = options
        self._sock = sock
        self._mode = mode
        self._log_level = log_level
        self._on_request = on_request
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def __aenter__(self) -> _Worker:
        import json
        import sys

        from backends.fog.node_worker import options_to_dict
        from backends.local.process import child_environment

        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backends.fog.node_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(self._sock.fileno(),),
            env=child_environment(),
            start_new_session=True,
        )
        data = {
            **options_to_dict(self._options),
            "fd": self._sock.fileno(),
            "extra_buffers": self._mode,
            "log_level": self._log_level,
            "log_requests": self._on_request is not None,
        }
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(data).encode() + b"\n")
        await self._process.stdin.drain()
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        import json

        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "ready" in message and self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            elif "request" in message and self._on_request is not None:
                self._on_request(str(message["request"]))

    async def ready(self) -> None:
        """Wait until the worker accepts connections; raise if it died first."""
        assert self._ready is not None and self._reader is not None
        await asyncio.wait([self._ready, self._reader], return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.done():
            how = await self.wait()
            raise ConfigurationError(
                "The fog node's server stopped while starting.",
                reason=f"Its inference process {how} before it accepted connections "
                "(see the log above).",
                suggestion="Check the certificate files and the model, then start again.",
            )

    async def wait(self) -> str:
        """Wait for the worker to end; how it ended ("was killed by SIGSEGV ...")."""
        from backends.local.process import describe_exit

        assert self._process is not None and self._reader is not None
        await asyncio.shield(self._reader)
        returncode = await self._process.wait()
        return f"(pid {self._process.pid}) {describe_exit(returncode)[0]}"

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(b'{"op": "stop"}\n')
            await process.stdin.drain()
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


def quiet_server(config: Any) -> Any:
    """A uvicorn server that leaves signal handling to the process that runs it."""
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


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
            suggestion="Pick another port (`ServeOptions.port`) or address "
            "(`ServeOptions.listen`), or stop the program that uses it.",
        ) from exc
    sock.set_inheritable(True)
    return sock


def default_listen(interfaces: Sequence[str]) -> str:
    """Listen on the one interface given, else on every IPv4 address."""
    return interfaces[0] if len(interfaces) == 1 else "0.0.0.0"
