"""Where the OpenAI API key comes from, and where ``spezichat key set`` keeps it.

Resolution order: an explicit key (schema or platform), then ``OPENAI_API_KEY``, then the
stored secret. The secret lives in the system keyring when a usable keyring backend is
installed, otherwise in ``openai_api_key`` (mode 0600) in the platformdirs config
directory. Nothing here logs or prints a key; :func:`mask_key` is for display.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.openai.errors import KeyStorageError

ENV_VAR = "OPENAI_API_KEY"
KEYRING_SERVICE = "spezichat"
KEYRING_USERNAME = "openai-api-key"
KEY_FILE_NAME = "openai_api_key"


@dataclass(frozen=True)
class ResolvedKey:
    """A key and where it came from ("explicit", "OPENAI_API_KEY", "keyring", "file")."""

    value: str
    source: str

    def __repr__(self) -> str:  # never show the key in tracebacks or logs
        return f"ResolvedKey(value={mask_key(self.value)!r}, source={self.source!r})"


def mask_key(key: str) -> str:
    """The key with all but its first 3 and last 4 characters hidden."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 8}{key[-4:]}"


def _clean(key: str) -> str:
    key = key.strip()
    if not key or any(ch.isspace() for ch in key):
        raise KeyStorageError(
            "The API key is not valid.",
            reason="An API key is one word without spaces, and the input was empty or had spaces.",
            suggestion="Paste the key exactly as OpenAI shows it.",
        )
    return key


def default_key_file() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("spezichat", appauthor=False)) / KEY_FILE_NAME


def _usable_keyring() -> Any | None:
    """The keyring module when a real backend is available, else ``None``."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


class KeyStore:
    """The stored OpenAI API key: in the keyring when usable, else in a 0600 file."""

    def __init__(self, path: Path | None = None, *, use_keyring: bool = True) -> None:
        self.path = path or default_key_file()
        self.use_keyring = use_keyring

    def _keyring(self) -> Any | None:
        return _usable_keyring() if self.use_keyring else None

    def get(self) -> ResolvedKey | None:
        ring = self._keyring()
        if ring is not None:
            with contextlib.suppress(Exception):
                value = ring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
                if value:
                    return ResolvedKey(value, "keyring")
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyStorageError(
                "The stored API key could not be read.",
                reason=f"{self.path}: {exc.strerror or exc}",
                suggestion="Fix the file's permissions, or store the key again.",
            ) from exc
        return ResolvedKey(value, "file") if value else None

    def set(self, key: str) -> str:
        """Store ``key``; returns where it went ("keyring" or the file path)."""
        key = _clean(key)
        ring = self._keyring()
        if ring is not None:
            try:
                ring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key)
            except Exception:
                pass  # a locked or broken keyring: fall back to the file
            else:
                self._remove_file()
                return "keyring"
        self._write_file(key)
        return str(self.path)

    def delete(self) -> list[str]:
        """Remove the stored key everywhere; returns where it was removed from."""
        removed: list[str] = []
        ring = self._keyring()
        if ring is not None:
            with contextlib.suppress(Exception):
                if ring.get_password(KEYRING_SERVICE, KEYRING_USERNAME):
                    ring.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
                    removed.append("keyring")
        if self._remove_file():
            removed.append(str(self.path))
        return removed

    def _write_file(self, key: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(key + "\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise KeyStorageError(
                reason=f"{self.path}: {exc.strerror or exc}",
            ) from exc

    def _remove_file(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise KeyStorageError(
                "The stored API key could not be deleted.",
                reason=f"{self.path}: {exc.strerror or exc}",
                suggestion="Delete the file by hand.",
            ) from exc
        return True


def resolve_api_key(
    explicit: str | None = None,
    *,
    store: KeyStore | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedKey | None:
    """The key to use: ``explicit``, then ``OPENAI_API_KEY``, then the stored one."""
    if explicit:
        return ResolvedKey(explicit.strip(), "explicit")
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    if value:
        return ResolvedKey(value, ENV_VAR)
    return (store or KeyStore()).get()
