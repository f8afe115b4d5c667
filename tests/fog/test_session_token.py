"""A fog schema may carry its own token (SpeziLLM's fog schema carries its token closure).

Two users' sessions share one platform (discovery, node slots) and each request carries
the token of the session that made it; a session without one uses the platform's.
"""

from __future__ import annotations

from backends import Runner
from backends.fog.auth import StaticToken
from backends.fog.certs import NodeCertificates
from backends.fog.platform import FogPlatform, FogSchema
from tests.fog.conftest import MODEL, TOKEN, manual_config, server_context
from tests.support.openai_server import OpenAITestServer


async def test_each_session_sends_its_own_token_over_one_platform(
    node_certs: NodeCertificates,
) -> None:
    with OpenAITestServer(
        api_key=None, models=(MODEL,), ssl_context=server_context(node_certs)
    ) as server:
        platform = FogPlatform(manual_config(server, ca=node_certs.ca_cert))
        async with Runner([platform]) as runner:
            alice = runner.session(FogSchema(model=MODEL, token=StaticToken("alice-token")))
            bob = runner.session(FogSchema(model=MODEL, token=StaticToken("bob-token")))
            shared = runner.session(FogSchema(model=MODEL))
            for session, text in ((alice, "from alice"), (bob, "from bob"), (shared, "x")):
                session.context.append_user(text)
                assert "".join([p async for p in session.generate()]) == f"Echo: {text}"
        bearers = [request.bearer for request in server.chat_requests]
        assert bearers == ["alice-token", "bob-token", TOKEN]
        assert "alice-token" not in repr(alice.schema)
