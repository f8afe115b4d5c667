"""Bearer tokens (providers, refresh after 401) and the typed errors a node's answers map to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backends import Runner
from backends.fog.auth import CommandToken, EnvToken, FileToken
from backends.fog.certs import NodeCertificates
from backends.fog.errors import (
    FogConnectivityError,
    FogGenerationError,
    FogModelNotFoundError,
    FogTokenError,
    FogUnauthorizedError,
    model_not_found_in,
)
from backends.fog.platform import FogPlatform, FogSchema
from tests.fog.conftest import MODEL, TOKEN, manual_config
from tests.support.openai_server import OpenAITestServer, Reply

SEQUENCE_SCRIPT = """
import pathlib, sys
counter = pathlib.Path(sys.argv[1])
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
print(sys.argv[1 + runs])
"""


def token_command(tmp_path: Path, *tokens: str) -> tuple[str, Path]:
    """A shell command that prints the next of ``tokens`` each time it runs."""
    script = tmp_path / "token.py"
    script.write_text(SEQUENCE_SCRIPT)
    counter = tmp_path / "runs"
    return f"{sys.executable} {script} {counter} {' '.join(tokens)}", counter


async def generate(platform: FogPlatform, model: str = MODEL) -> str:
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=model))
        session.context.append_user("Hi")
        return "".join([piece async for piece in session.generate()])


async def test_command_token_is_cached_and_fetched_again_after_a_401(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, tmp_path: Path
) -> None:
    command, counter = token_command(tmp_path, "expired-token", TOKEN)
    provider = CommandToken(command)
    platform = FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert, token=provider))

    assert await generate(platform) == "Echo: Hi"
    assert await generate(platform) == "Echo: Hi"

    # First the stale token (401 on the health check), then the fresh one, cached since.
    assert counter.read_text() == "2"
    bearers = [r.bearer for r in tls_server.requests]
    assert bearers[0] == "expired-token"
    assert set(bearers[1:]) == {TOKEN}
    assert len(tls_server.chat_requests) == 2


async def test_a_token_the_node_refuses(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEZICHAT_FOG_TOKEN", "not-the-token")
    config = manual_config(tls_server, ca=node_certs.ca_cert, token=EnvToken())
    with pytest.raises(FogUnauthorizedError) as caught:
        await generate(FogPlatform(config))
    assert "SPEZICHAT_FOG_TOKEN" in caught.value.reason
    assert "401" in caught.value.reason
    # The environment is read per request: fixing it fixes the next request.
    monkeypatch.setenv("SPEZICHAT_FOG_TOKEN", TOKEN)
    assert await generate(FogPlatform(config)) == "Echo: Hi"


async def test_no_token_at_all(tls_server: OpenAITestServer, node_certs: NodeCertificates) -> None:
    config = manual_config(tls_server, ca=node_certs.ca_cert, token=None)
    with pytest.raises(FogUnauthorizedError) as caught:
        await generate(FogPlatform(config))
    assert "No bearer token is configured" in caught.value.reason
    assert "authorization" not in tls_server.requests[0].headers


async def test_token_sources_that_fail(tmp_path: Path) -> None:
    with pytest.raises(FogTokenError) as caught:
        await CommandToken(f"{sys.executable} -c 'import sys; sys.exit(3)'")()
    assert "status 3" in caught.value.reason
    with pytest.raises(FogTokenError) as caught:
        await CommandToken(f"{sys.executable} -c 'pass'")()
    assert "printed nothing" in caught.value.reason
    with pytest.raises(FogTokenError) as caught:
        await CommandToken(f"{sys.executable} -c 'import time; time.sleep(5)'", timeout=0.2)()
    assert "did not finish" in caught.value.reason
    stored = tmp_path / "fog_token"
    stored.write_text("  stored-token\n")
    assert await FileToken(stored)() == "stored-token"
    with pytest.raises(FogTokenError) as caught:
        await FileToken(tmp_path / "missing")()
    assert str(tmp_path / "missing") in caught.value.reason


async def test_a_failing_token_command_stops_the_request(
    tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    provider = CommandToken(f"{sys.executable} -c 'import sys; sys.exit(7)'")
    with pytest.raises(FogTokenError) as caught:
        await generate(
            FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert, token=provider))
        )
    assert "status 7" in caught.value.reason
    assert tls_server.requests == []


def test_ollama_model_messages() -> None:
    assert model_not_found_in("model 'llama3:8b' not found, try pulling it first") == "llama3:8b"
    assert model_not_found_in('model "gemma2" not found') == "gemma2"
    assert model_not_found_in("something else broke") is None


async def test_model_not_on_the_node(
    tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    tls_server.script(
        Reply.api_error(404, "model 'llama3:8b' not found, try pulling it first", type="api_error")
    )
    with pytest.raises(FogModelNotFoundError) as caught:
        await generate(FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert)), "llama3:8b")
    assert caught.value.model == "llama3:8b"
    assert "'llama3:8b'" in caught.value.description
    assert "ollama pull" in caught.value.suggestion


async def test_server_errors_and_broken_streams(
    tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    platform = FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert))
    tls_server.script(Reply.api_error(500, "CUDA out of memory", type="server_error"))
    with pytest.raises(FogGenerationError) as caught:
        await generate(platform)
    assert "CUDA out of memory" in caught.value.reason
    tls_server.script(Reply.api_error(503, "upstream down", type="server_error"))
    with pytest.raises(FogConnectivityError):
        await generate(platform)
    # Cut after some text: the reply so far stays, the error says the reply is incomplete.
    tls_server.script(Reply(text="partial answer here", drop_after=3))
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("Hi")
        pieces: list[str] = []
        with pytest.raises(FogGenerationError) as caught:
            async for piece in session.generate():
                pieces.append(piece)
        assert pieces and "".join(pieces) in "partial answer here"
        assert "middle of the reply" in caught.value.description
        assert session.context[-1].content == "".join(pieces)
    await platform.aclose()
