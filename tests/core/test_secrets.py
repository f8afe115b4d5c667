"""Secrets (issue #12): checked where they enter, never shown, written privately.

Textual prints an unhandled exception as a Rich traceback *with local variables*; these
tests render such tracebacks for real and look for the secret in the text.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from rich.traceback import Traceback

from backends.errors import InvalidSecretError, LLMError
from backends.openai.client import BearerAuth, ChatCompletionsClient, static_token
from backends.secrets import Secret, check_secret, write_private_file
from tests.support.openai_server import OpenAITestServer, openai_server

__all__ = ["openai_server"]

MARK = "Zq7SECRETmark"
BAD_KEYS = {
    "ellipsis": f"sk-proj-{MARK}\u2026tail99",
    "newline": f"sk-proj-{MARK}\nsecond-line",
    "tab": f"sk-proj-{MARK}\ttail99",
}


def crash_report(exc: BaseException) -> str:
    """What Textual's crash screen prints for ``exc``: a traceback with local variables."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    trace = Traceback.from_exception(
        type(exc), exc, exc.__traceback__, show_locals=True, locals_max_length=5
    )
    console.print(trace)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Traceback" in text or "Error" in text  # something was rendered
    return text


def assert_hidden(error: LLMError, *texts: str) -> None:
    shown = [str(error), repr(error), error.explain(), str(error.to_dict()), *texts]
    for text in shown:
        assert MARK not in text, text


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_check_secret_names_source_and_problem_never_the_value(kind: str) -> None:
    with pytest.raises(InvalidSecretError) as caught:
        check_secret(BAD_KEYS[kind], what="OpenAI API key", source="the key file /k")
    error = caught.value
    assert "the key file /k" in error.description
    problem = {"ellipsis": "U+2026", "newline": "a line break", "tab": "a tab"}[kind]
    assert problem in error.reason
    assert_hidden(error, crash_report(error))


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_secret_checked_keeps_the_value_out_of_the_traceback(kind: str) -> None:
    def enter(secret: Secret) -> Secret:
        return Secret.checked(secret, what="key", source="the field")

    with pytest.raises(InvalidSecretError) as caught:
        enter(Secret(BAD_KEYS[kind]))
    report = crash_report(caught.value)
    assert "Secret(<hidden" in report  # the caller's local is there, masked
    assert MARK not in report


def test_a_secret_does_not_show_itself() -> None:
    secret = Secret(f"sk-{MARK}-0123")
    assert MARK not in repr(secret) and MARK not in str(secret) and MARK not in f"{secret}"
    assert secret.reveal() == f"sk-{MARK}-0123"
    assert secret == f"sk-{MARK}-0123" and secret == Secret(f"sk-{MARK}-0123")
    assert secret != "sk-other"
    assert Secret.of("") is None and Secret.of(None) is None and Secret.of(secret) is secret
    assert MARK not in repr(BearerAuth(secret, what="key", source="there"))
    assert MARK not in repr(static_token(secret))

    def crash(key: Secret) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError) as caught:
        crash(secret)
    assert MARK not in crash_report(caught.value)


async def test_a_token_provider_handing_out_a_bad_string_is_refused_before_sending(
    openai_server: OpenAITestServer,
) -> None:
    """Before: h11 raised "Illegal header value b'Bearer ...'", reported as a network error."""

    async def provider(*, refresh: bool = False) -> str:
        return BAD_KEYS["newline"]

    provider.source = "the token helper"  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as http:
        client = ChatCompletionsClient(http, openai_server.base_url, token=provider)
        with pytest.raises(InvalidSecretError) as caught:
            await client.list_models()
    assert "the token helper" in caught.value.description
    assert_hidden(caught.value, crash_report(caught.value))
    assert openai_server.requests == []


async def test_a_header_h11_refuses_is_not_quoted_in_the_error(
    openai_server: OpenAITestServer,
) -> None:
    async with httpx.AsyncClient() as http:
        client = ChatCompletionsClient(
            http, openai_server.base_url, headers={"X-Extra": f"{MARK}\nInjected: yes"}
        )
        with pytest.raises(LLMError) as caught:
            await client.list_models()
    assert "could not be sent" in caught.value.description
    assert_hidden(caught.value, crash_report(caught.value))
    assert openai_server.requests == []


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_write_private_file_is_0600_from_the_start(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        target = tmp_path / "new" / "dir" / "secret"
        write_private_file(target, "one\n")
        write_private_file(target, b"two\n")
    finally:
        os.umask(previous)
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["secret"]  # no temporary left
