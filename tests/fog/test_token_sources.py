"""Fog tokens with a '…', a line break or a tab, from every source (issue #12).

Before, such a token reached h11, whose "Illegal header value b'Bearer ...'" quoted it
in full inside an error that blamed the network. Now each source refuses it before any
request, naming the source (for a token command: its output), never the token.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import InvalidSecretError, LLMError
from backends.fog.auth import CommandToken, EnvToken, FileToken, StaticToken, TokenProvider
from backends.fog.certs import NodeCertificates
from backends.fog.errors import FogTokenError
from backends.fog.platform import FogPlatform
from tests.core.test_secrets import crash_report
from tests.fog.conftest import MODEL, REPO, manual_config, node_url
from tests.fog.test_auth_errors import generate
from tests.support.openai_server import OpenAITestServer
from tui.settings import Settings

MARK = "Zq7SECRETmark"
BAD_TOKENS = {
    "ellipsis": f"fog-{MARK}\u2026tail99",
    "newline": f"fog-{MARK}\nsecond-line",
    "tab": f"fog-{MARK}\ttail99",
}
PROBLEMS = {"ellipsis": "U+2026", "newline": "a line break", "tab": "a tab"}


def assert_refused(error: LLMError, source: str, kind: str) -> None:
    assert isinstance(error, InvalidSecretError) and isinstance(error, FogTokenError)
    assert source in error.description, error.description
    assert PROBLEMS[kind] in error.reason
    for text in (str(error), repr(error), error.explain(), str(error.to_dict())):
        assert MARK not in text
    assert MARK not in crash_report(error)


def printing(tmp_path: Path, token: str) -> str:
    """A token command that prints ``token`` (its exact bytes) on standard output."""
    script = tmp_path / "print_token.py"
    script.write_text(f"import sys\nsys.stdout.write({token!r})\n")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def provider(
    kind: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[TokenProvider, str]:
    """A provider of ``source`` handing out the bad token, and how errors name it."""
    token = BAD_TOKENS[kind]
    if source == "env":
        monkeypatch.setenv("SPEZICHAT_FOG_TOKEN", token)
        return EnvToken(), "the environment variable SPEZICHAT_FOG_TOKEN"
    if source == "file":
        path = tmp_path / "fog_token"
        path.write_text(token + "\n")  # for "newline": a two-line token file
        return FileToken(path), f"the token file {path}"
    if source == "command":
        command = printing(tmp_path, token)
        return CommandToken(command), f"the output of the token command `{command}`"
    return StaticToken(token), "the configured token"


@pytest.mark.parametrize("source", ["env", "file", "command", "config"])
@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_a_bad_token_is_refused_before_any_request(
    kind: str,
    source: str,
    tls_server: OpenAITestServer,
    node_certs: NodeCertificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, named = provider(kind, source, tmp_path, monkeypatch)
    with pytest.raises(InvalidSecretError) as caught:
        await token()
    assert_refused(caught.value, named, kind)
    platform = FogPlatform(manual_config(tls_server, ca=node_certs.ca_cert, token=token))
    with pytest.raises(LLMError) as caught:
        await generate(platform)
    error = caught.value
    for text in (str(error), error.explain(), crash_report(error)):
        assert MARK not in text
    assert "token" in error.explain().lower()
    assert tls_server.requests == []


def fog_settings(server: OpenAITestServer, certs: NodeCertificates) -> None:
    settings = Settings()
    settings.fog.manual_nodes = [node_url(server)]
    settings.fog.service_names = ["no-such-service-for-this-test"]
    settings.fog.interfaces = ["127.0.0.1"]
    settings.fog.discovery_timeout = 0.5
    settings.fog.ca_cert = str(certs.ca_cert)
    settings.save()


def ask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "ask", "-b", "fog", "-m", MODEL, *args, "hi"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], source: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("  why: ")
    assert source in result.stderr
    assert "Traceback" not in result.stderr
    assert MARK not in result.stdout and MARK not in result.stderr


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_ask_with_a_bad_token_in_the_environment(
    kind: str, tls_server: OpenAITestServer, node_certs: NodeCertificates
) -> None:
    fog_settings(tls_server, node_certs)
    result = ask({**os.environ, "SPEZICHAT_FOG_TOKEN": BAD_TOKENS[kind]})
    assert_clean_failure(result, "SPEZICHAT_FOG_TOKEN")
    assert tls_server.requests == []


def test_ask_with_a_token_command_printing_two_lines(
    tls_server: OpenAITestServer, node_certs: NodeCertificates, tmp_path: Path
) -> None:
    fog_settings(tls_server, node_certs)
    # The command is named in the error (it is no secret); what it prints is the token.
    command = printing(tmp_path, BAD_TOKENS["newline"])
    result = ask(os.environ.copy(), "--token-command", command)
    assert_clean_failure(result, "the output of the token command")
    assert tls_server.requests == []
