"""Where the OpenAI API key comes from, and where ``spezichat key set`` keeps it.

Resolution order: an explicit key (schema or platform), then ``OPENAI_API_KEY``, then the
stored secret. The secret lives in the system keyring when a usable keyring backend is
installed, otherwise in ``openai_api_key`` (mode 0600) in the platformdirs config
directory. Every source is checked with :func:`backends.secrets.check_secret`: a key
that cannot go into an HTTP header (a pasted '…', a line break) is refused with an
error naming the source, never the key. Nothing here logs or prints a key;
:func:`mask_key` is for display.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.openai.errors import KeyStorageError
from backends.secrets import Secret, write_private_file

ENV_VAR = "OPENAI_API_KEY"
KEYRING_SERVICE = "spezichat"
KEYRING_USERNAME = "openai-api-key"
KEY_FILE_NAME = "openai_api_key"
WHAT = "OpenAI API key"
ENV_SOURCE = f"the {ENV_VAR} environment variable"
EXPLICIT_SOURCE = "the api_key setting of the OpenAI platform or schema"
KEYRING_SOURCE = f"the system keyring (service '{KEYRING_SERVICE}')"


@dataclass(frozen=True)
class ResolvedKey:
    """A key and where it came from ("explicit", "OPENAI_API_KEY", "keyring", "file")."""

    value: str
    source: str

    def __repr__(self) -> str:  # never show the key in tracebacks or logs
        return f"ResolvedKey(value={mask_key(self.value)!r}, source={self.source!r})"

    @property
    def secret(self) -> Secret:
        """The key wrapped, for carrying it on to a request."""
        return Secret(self.value)


def mask_key(key: str) -> str:
    """The key with all but its first 3 and last 4 characters hidden."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 8}{key[-4:]}"


def _checked(value: str | Secret, source: str) -> Secret:
    return Secret.checked(value, what=WHAT, source=source)


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
        """The stored key, or ``None``; raises InvalidSecretError for one that cannot work."""
        ring = self._keyring()
        if ring is not None:
            stored: Secret | None = None
            with contextlib.suppress(Exception):
                stored = Secret.of(ring.get_password(KEYRING_SERVICE, KEYRING_USERNAME))
            if stored is not None:
                return ResolvedKey(_checked(stored, KEYRING_SOURCE).reveal(), "keyring")
        try:
            stored = Secret.of(self.path.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise KeyStorageError(
                "The stored API key could not be read.",
                reason=f"{self.path}: {why or type(exc).__name__}",
                suggestion="Fix the file's permissions, or store the key again.",
            ) from None  # a decoding error would carry the file's bytes
        if stored is None:
            return None
        return ResolvedKey(_checked(stored, f"the key file {self.path}").reveal(), "file")

    def set(self, key: str | Secret, *, source: str = "the key to store") -> str:
        """Store ``key``; returns where it went ("keyring" or the file path).

        ``source`` names where the key came from, for the error when it cannot be used.
        """
        secret = key if isinstance(key, Secret) else Secret(key)
        del key  # no plain key in this frame: a traceback shows its locals
        secret = _checked(secret, source)
        ring = self._keyring()
        if ring is not None:
            try:
                ring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, secret.reveal())
            except Exception:
                pass  # a locked or broken keyring: fall back to the file
            else:
                self._remove_file()
                return "keyring"
        self._write_file(secret)
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

    def _write_file(self, key: Secret) -> None:
        try:
            write_private_file(self.path, key.reveal() + "\n")
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
    explicit: str | Secret | None = None,
    *,
    store: KeyStore | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedKey | None:
    """The key to use: ``explicit``, then ``OPENAI_API_KEY``, then the stored one.

    Raises :class:`~backends.errors.InvalidSecretError` naming the source when the first
    key found cannot be sent (a non-ASCII character, a space, a line break).
    """
    given = Secret.of(explicit)
    del explicit
    if given is not None:
        return ResolvedKey(_checked(given, EXPLICIT_SOURCE).reveal(), "explicit")
    # No local for the environment: its repr in a traceback would list every variable.
    from_env = Secret.of((os.environ if environ is None else environ).get(ENV_VAR, "").strip())
    del environ
    if from_env is not None:
        return ResolvedKey(_checked(from_env, ENV_SOURCE).reveal(), ENV_VAR)
    return (store or KeyStore()).get()
