"""``spezichat fog init|serve|advertise``: run a fog node on this machine.

``init`` issues the node's root CA, server certificate and API key; ``serve`` runs a
GGUF model with llama-cpp-python's OpenAI-compatible server over TLS and advertises it;
``advertise`` announces a server that already runs (Ollama, vLLM, llama.cpp server).
``serve`` and ``advertise`` run until Ctrl+C (or SIGTERM) and then unregister with
mDNS goodbye packets.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_PORT = 8443


def _node_dir_help() -> str:
    return "node directory (default: fog-node in spezichat's data directory)"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fog",
        help="run a fog node: certificates, server, mDNS advertising",
        description=(
            "Set up and run a fog node that spezichat clients on the local network find "
            "over mDNS. Typical use: `spezichat fog init`, copy <dir>/ca/ca.crt and the key "
            "in <dir>/auth/api_key to the clients, then `spezichat fog serve --model "
            "MODEL.gguf`. Exit codes: 0 ok (also when stopped with Ctrl+C or SIGTERM), 1 "
            "failure, 2 usage."
        ),
    )
    actions = parser.add_subparsers(dest="fog_command", metavar="ACTION", required=True)

    init = actions.add_parser(
        "init",
        help="create the node's root CA, server certificate and API key",
        description=(
            "Create <dir>/ca/ca.crt and ca.key (root CA), <dir>/webservice/HOST.key, .csr "
            "and .crt (server certificate for HOST, signed by the CA) and <dir>/auth/api_key. "
            "Private keys and the API key are readable only by you (mode 0600)."
        ),
    )
    init.add_argument("--dir", metavar="D", help=_node_dir_help())
    init.add_argument(
        "--host",
        default="spezillmfog.local",
        help="host name of the certificate (default: %(default)s)",
    )
    init.add_argument(
        "--ip",
        action="append",
        metavar="ADDR",
        default=[],
        help="also valid for this IP address (repeatable), for clients without SNI",
    )
    init.add_argument("--force", action="store_true", help="replace existing files")

    serve = actions.add_parser(
        "serve",
        help="serve a GGUF model over TLS and advertise it",
        description=(
            "Serve a GGUF model with llama-cpp-python's OpenAI-compatible server (needs "
            "the extra: pip install 'spezichat[server]'), over TLS with the certificate "
            "from `fog init`, requiring the API key as bearer token, and advertise it "
            "over mDNS until Ctrl+C."
        ),
    )
    serve.add_argument("--model", required=True, metavar="PATH.gguf", help="model file to serve")
    serve.add_argument("--alias", help="model id for clients (default: the file name)")
    serve.add_argument("--dir", metavar="D", help=_node_dir_help())
    serve.add_argument(
        "--host",
        default="spezillmfog.local",
        help="host name of the certificate, advertised over mDNS (default: %(default)s)",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--listen",
        metavar="ADDR",
        help="address to listen on (default: the one --interface, else 0.0.0.0)",
    )
    key = serve.add_mutually_exclusive_group()
    key.add_argument("--api-key", metavar="KEY", help="bearer token clients must send")
    key.add_argument(
        "--api-key-file", metavar="FILE", help="file holding it (default: <dir>/auth/api_key)"
    )
    key.add_argument(
        "--no-auth", action="store_true", help="accept requests without a token (development)"
    )
    serve.add_argument(
        "--no-tls", action="store_true", help="serve plain HTTP (development; advertised as http)"
    )
    serve.add_argument(
        "--no-advertise", action="store_true", help="do not announce the node over mDNS"
    )
    _advertise_options(serve)
    serve.add_argument("--chat-format", help="chat template override (for example gemma)")
    serve.add_argument(
        "--cpu-extra-buffers",
        choices=("auto", "on", "off"),
        default="auto",
        help="llama.cpp's CPU extra buffer types; auto turns them off on AMX CPUs, where "
        "they can crash llama.cpp (default: %(default)s)",
    )
    serve.add_argument(
        "--n-ctx", type=int, default=4096, help="context window in tokens (default: %(default)s)"
    )
    serve.add_argument(
        "--n-gpu-layers",
        type=int,
        default=0,
        help="layers offloaded to the GPU, -1 all (default: %(default)s)",
    )

    advertise = actions.add_parser(
        "advertise",
        help="announce a server that already runs (Ollama, vLLM, llama.cpp server)",
        description=(
            "Announce an OpenAI-compatible server that already listens on PORT so that "
            "clients find it, until Ctrl+C. With --tls it is announced as _https._tcp (its "
            "certificate must be issued for --host); without, as _http._tcp, which clients "
            "use only on loopback, with --insecure (without their token), or when they "
            "allow the node (--allow-http-node ADDRESS:PORT, sending the token unencrypted)."
        ),
    )
    advertise.add_argument("--port", type=int, required=True, help="port the server listens on")
    advertise.add_argument("--tls", action="store_true", help="the server speaks HTTPS")
    advertise.add_argument(
        "--host",
        default="spezillmfog.local",
        help="host name the server's certificate is issued for (default: %(default)s)",
    )
    _advertise_options(advertise)


def _advertise_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name",
        default="SpeziLLMFog Service",
        help="mDNS instance name; clients recognise nodes whose name contains "
        "'spezillmfog' (default: %(default)s)",
    )
    parser.add_argument(
        "--interface",
        action="append",
        metavar="ADDR",
        default=[],
        help="advertise only on the interface with this address (repeatable), for "
        "example 127.0.0.1; default: all",
    )


def run(args: argparse.Namespace) -> int:
    from backends.errors import LLMError
    from tui.commands.common import fail

    try:
        if args.fog_command == "init":
            return _init(args)
        if args.fog_command == "serve":
            return _serve(args)
        return _advertise(args)
    except LLMError as error:
        return fail(error)


def _node_dir(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from tui.settings import data_dir

    return Path(args.dir).expanduser() if args.dir else data_dir() / "fog-node"


def _init(args: argparse.Namespace) -> int:
    from backends.fog.certs import create_node_certificates, fingerprint
    from backends.fog.serve import API_KEY_FILE, create_api_key

    directory = _node_dir(args)
    certs = create_node_certificates(
        directory, args.host, ip_addresses=args.ip, overwrite=args.force
    )
    key_path = directory / API_KEY_FILE
    create_api_key(key_path, overwrite=args.force)
    print(f"Created the fog node files in {directory}:")
    for path in (*certs.files(), key_path):
        private = path in (certs.ca_key, certs.server_key, key_path)
        print(f"  {path}{'  (private, mode 0600)' if private else ''}")
    print(f"\nRoot CA fingerprint (SHA-256): {fingerprint(certs.ca_cert)}")
    print("\nNext steps:")
    print(f"  1. Copy {certs.ca_cert} to each client and point it there:")
    print("       spezichat ask --backend fog --ca-cert ca.crt ...  (or SPEZICHAT_FOG_CA_CERT)")
    print(f"  2. Give clients the API key in {key_path} as their token")
    print("       (SPEZICHAT_FOG_TOKEN, or the token step of `spezichat --onboarding`).")
    print("  3. Start the node: spezichat fog serve --model MODEL.gguf")
    print("     or put Ollama/vLLM behind a TLS proxy with the webservice/ files and run")
    print("     spezichat fog advertise --port 443 --tls")
    return 0


def _run_until_stopped(main: Any) -> int:
    """Run ``main`` (a coroutine); SIGTERM stops it like Ctrl+C does."""
    import asyncio
    import contextlib
    import signal

    async def runner() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            # Windows has no add_signal_handler: Ctrl+C still works there.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return int(await main)
        except asyncio.CancelledError:
            return 0

    return asyncio.run(runner())


def _advertise(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from backends.fog.advertise import FogAdvertiser
    from backends.untrusted import one_line

    async def main() -> int:
        advertiser = FogAdvertiser(
            args.port,
            tls=args.tls,
            name=args.name,
            host=args.host,
            interfaces=tuple(args.interface),
        )
        async with advertiser:
            kind = "_https._tcp" if args.tls else "_http._tcp"
            print(
                f"Advertising '{one_line(advertiser.registered_name)}' ({kind}) for "
                f"{args.host} on {', '.join(advertiser.addresses)} port {args.port}.",
                flush=True,
            )
            if not await _port_open(advertiser.addresses, args.port):
                print(
                    f"warning: nothing answers on port {args.port} yet; clients will find "
                    "the node but cannot connect until the server runs.",
                    file=sys.stderr,
                    flush=True,
                )
            print("Press Ctrl+C to stop.", flush=True)
            try:
                await asyncio.Event().wait()
            finally:
                print("Stopping: unregistering the service (goodbye packets).", flush=True)
        return 0

    return _run_until_stopped(main())


async def _port_open(addresses: Any, port: int) -> bool:
    import asyncio
    import contextlib

    for address in addresses:
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 1)
            writer.close()
            return True
    return False


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backends.errors import ConfigurationError
    from backends.fog.advertise import FogAdvertiser
    from backends.fog.certs import NodeCertificates
    from backends.fog.serve import API_KEY_FILE, ServeOptions, default_listen, read_api_key, serve
    from backends.untrusted import one_line

    directory = _node_dir(args)
    certs = None
    if not args.no_tls:
        certs = NodeCertificates(directory, args.host.strip().rstrip(".").lower())
        missing = [p for p in (certs.server_cert, certs.server_key) if not p.is_file()]
        if missing:
            raise ConfigurationError(
                "The node's TLS certificate is missing.",
                reason=f"{missing[0]} does not exist.",
                suggestion=f"Run `spezichat fog init --dir {directory} --host {args.host}` "
                "first, or pass --no-tls for a development node.",
            )
    api_key: str | None = None
    if args.api_key:
        from backends.secrets import check_secret

        api_key = check_secret(args.api_key, what="fog node API key", source="--api-key")
    elif not args.no_auth:
        key_file = Path(args.api_key_file).expanduser() if args.api_key_file else None
        api_key = read_api_key(key_file or directory / API_KEY_FILE)
    options = ServeOptions(
        model=Path(args.model).expanduser(),
        alias=args.alias or "",
        certificates=certs,
        api_key=api_key,
        listen=args.listen or default_listen(args.interface),
        port=args.port,
        advertise=not args.no_advertise,
        name=args.name,
        host=args.host,
        interfaces=tuple(args.interface),
        chat_format=args.chat_format,
        n_ctx=args.n_ctx,
        n_gpu_layers=args.n_gpu_layers,
        cpu_extra_buffers=args.cpu_extra_buffers,
    )

    def ready(url: str, advertiser: FogAdvertiser | None) -> None:
        auth = "bearer token required" if api_key else "no authentication"
        print(f"Serving {options.model_id} at {url} ({auth}).", flush=True)
        if advertiser is not None:
            print(
                f"Advertised as '{one_line(advertiser.registered_name)}' on "
                f"{', '.join(advertiser.addresses)}. Press Ctrl+C to stop.",
                flush=True,
            )

    print(f"Loading {options.model} ...", flush=True)
    return _run_until_stopped(_serve_main(options, ready, serve))


async def _serve_main(options: Any, ready: Any, serve: Any) -> int:
    from backends.untrusted import one_line

    def request(line: str) -> None:
        # Request paths come from network clients: no control characters in the log.
        print(one_line(line), flush=True)

    try:
        await serve(options, on_ready=ready, on_request=request, on_event=request)
    finally:
        print("Stopped; the node is no longer advertised.", flush=True)
    return 0
