"""OpenAI keys with a '…', a line break or a tab, from every source (issue #12).

Each source refuses such a key with an error that names the source and never contains
the key: the explicit key, ``OPENAI_API_KEY``, the keyring, the key file and
``spezichat key set``; ``spezichat ask`` prints the three-line error and exits 1,
without a traceback and without sending anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import keyring
import pytest

from backends.errors import InvalidSecretError, LLMError
from backends.openai import KeyStore, OpenAIPlatform, resolve_api_key
from backends.openai.keys import KEYRING_SERVICE, KEYRING_USERNAME
from tests.core.test_secrets import crash_report
from tests.openai.test_cli import ENTRY, REPO
from tests.openai.test_keys import MemoryKeyring
from tests.support.openai_server import OpenAITestServer

MARK = "Zq7SECRETmark"
BAD_KEYS = {
    "ellipsis": f"sk-proj-{MARK}\u2026tail99",
    "newline": f"sk-proj-{MARK}\nsecond-line",
    "tab": f"sk-proj-{MARK}\ttail99",
}
PROBLEMS = {"ellipsis": "U+2026", "newline": "a line break", "tab": "a tab"}


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def assert_refused(error: LLMError, source: str, kind: str) -> None:
    assert isinstance(error, InvalidSecretError)
    assert source in error.description, error.description
    assert PROBLEMS[kind] in error.reason
    for text in (str(error), repr(error), error.explain(), str(error.to_dict())):
        assert MARK not in text
    assert MARK not in crash_report(error)


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_the_environment_variable(kind: str) -> None:
    with pytest.raises(InvalidSecretError) as caught:
        resolve_api_key(environ={"OPENAI_API_KEY": BAD_KEYS[kind]}, store=KeyStore())
    assert_refused(caught.value, "the OPENAI_API_KEY environment variable", kind)


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_the_key_file(kind: str) -> None:
    store = KeyStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(BAD_KEYS[kind] + "\n")  # a two-line file for "newline"
    with pytest.raises(InvalidSecretError) as caught:
        store.get()
    assert_refused(caught.value, f"the key file {store.path}", kind)


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_the_keyring(kind: str, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.secrets[(KEYRING_SERVICE, KEYRING_USERNAME)] = BAD_KEYS[kind]
    with pytest.raises(InvalidSecretError) as caught:
        KeyStore().get()
    assert_refused(caught.value, "the system keyring", kind)


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_storing_refuses_it_and_stores_nothing(kind: str) -> None:
    store = KeyStore()
    with pytest.raises(InvalidSecretError) as caught:
        store.set(BAD_KEYS[kind], source="standard input")
    assert_refused(caught.value, "standard input", kind)
    assert not store.path.exists()


@pytest.mark.parametrize("kind", BAD_KEYS)
async def test_an_explicit_key_is_refused_before_any_request(
    kind: str, openai_server: OpenAITestServer
) -> None:
    platform = OpenAIPlatform(base_url=openai_server.base_url, api_key=BAD_KEYS[kind])
    assert MARK not in repr(platform)
    try:
        with pytest.raises(LLMError) as caught:
            await platform.list_models()
    finally:
        await platform.aclose()
    assert_refused(caught.value, "api_key", kind)
    assert openai_server.requests == []


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY, *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def assert_three_line_error(result: subprocess.CompletedProcess[str], source: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("error: ") and source in lines[0]
    assert lines[1].startswith("  why: ") and lines[2].startswith("  fix: ")
    assert "Traceback" not in result.stderr
    assert MARK not in result.stdout and MARK not in result.stderr


@pytest.mark.parametrize("kind", ["ellipsis", "tab"])
def test_key_set_refuses_it(kind: str) -> None:
    result = run(["key", "set"], os.environ.copy(), stdin=BAD_KEYS[kind] + "\n")
    assert_three_line_error(result, "standard input")
    assert not KeyStore().path.exists()


@pytest.mark.parametrize("kind", BAD_KEYS)
def test_ask_with_a_bad_environment_key(kind: str, openai_server: OpenAITestServer) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": openai_server.base_url}
    env["OPENAI_API_KEY"] = BAD_KEYS[kind]
    result = run(["ask", "-b", "openai", "-m", "gpt-test", "hi"], env)
    assert_three_line_error(result, "OPENAI_API_KEY")
    assert openai_server.requests == []


def test_ask_with_a_two_line_key_file(openai_server: OpenAITestServer) -> None:
    path = KeyStore().path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BAD_KEYS["newline"] + "\n")
    env = {**os.environ, "OPENAI_BASE_URL": openai_server.base_url}
    result = run(["ask", "-b", "openai", "-m", "gpt-test", "hi"], env)
    assert_three_line_error(result, str(path))
    assert openai_server.requests == []
