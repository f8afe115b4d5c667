"""API key resolution and storage: real files, a real (in-memory) keyring backend."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

from backends.errors import InvalidSecretError
from backends.openai import KeyStore, mask_key, resolve_api_key
from backends.openai.keys import KEYRING_SERVICE, KEYRING_USERNAME, default_key_file

KEY = "sk-proj-abcdefghijklmnop1234"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A working keyring backend that keeps secrets in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.secrets[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def test_the_file_store_is_private_and_under_the_config_dir(isolated_dirs: Path) -> None:
    store = KeyStore()
    assert store.path == default_key_file()
    assert store.path.is_relative_to(isolated_dirs / "xdg_config_home")
    assert store.get() is None
    where = store.set(f"  {KEY}\n")
    assert where == str(store.path)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.path.read_text() == KEY + "\n"
    resolved = store.get()
    assert resolved is not None and (resolved.value, resolved.source) == (KEY, "file")
    assert KEY not in repr(resolved)
    store.set("sk-other-key-000000000")
    assert store.get().value == "sk-other-key-000000000"  # type: ignore[union-attr]
    assert store.delete() == [str(store.path)]
    assert not store.path.exists() and store.get() is None
    assert store.delete() == []


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore()
    assert resolve_api_key(store=store) is None
    store.set("sk-stored-key-0000000")
    assert resolve_api_key(store=store).source == "file"  # type: ignore[union-attr]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-00000000")
    resolved = resolve_api_key(store=store)
    assert resolved is not None and (resolved.value, resolved.source) == (
        "sk-env-key-00000000",
        "OPENAI_API_KEY",
    )
    resolved = resolve_api_key("sk-explicit-0000000", store=store)
    assert resolved is not None and resolved.source == "explicit"


def test_the_keyring_is_used_when_a_backend_works(memory_keyring: MemoryKeyring) -> None:
    store = KeyStore()
    assert store.set(KEY) == "keyring"
    assert memory_keyring.secrets == {(KEYRING_SERVICE, KEYRING_USERNAME): KEY}
    assert not store.path.exists()
    resolved = store.get()
    assert resolved is not None and resolved.source == "keyring"
    assert store.delete() == ["keyring"]
    assert memory_keyring.secrets == {}


def test_a_key_with_spaces_is_refused() -> None:
    with pytest.raises(InvalidSecretError) as info:
        KeyStore().set("sk-abc def")
    assert "cannot be used" in info.value.description and "a space" in info.value.reason
    with pytest.raises(InvalidSecretError):
        KeyStore().set("   ")


def test_mask_key() -> None:
    assert mask_key(KEY) == "sk-********1234"
    assert mask_key("short") == "*****"
