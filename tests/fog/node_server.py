"""A fog node in its own process, so that tests can kill it like a crashed machine.

``python -m tests.fog.node_server CERT KEY TOKEN MODEL`` serves the loopback OpenAI test
server over TLS on 127.0.0.1 (echoing each prompt), prints ``port N`` and runs until
killed. Killing the process drops its open connections too, as a real crash does.
"""

from __future__ import annotations

import ssl
import sys
import threading

from tests.support.openai_server import OpenAITestServer


def main() -> None:
    cert, key, token, model = sys.argv[1:5]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = OpenAITestServer(api_key=token, models=(model,), ssl_context=context).start()
    print(f"port {server.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
