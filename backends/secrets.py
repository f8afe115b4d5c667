"""Secrets (API keys, bearer tokens) checked where they enter, and files kept private.

A key goes into an HTTP ``Authorization`` header, so it must be printable ASCII without
spaces. :func:`check_secret` enforces that at every entry point (the onboarding field,
``key set``, environment variables, files, token commands) and raises
:class:`~backends.errors.InvalidSecretError` naming the source and the problem, never the
value. :func:`write_private_file` is the one way spezichat writes a secret or private
file: atomically, with mode 0600 from the first byte.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from backends.errors import InvalidSecretError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def _describe(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return "a line break"
    if char == "\r":
        return "a carriage return"
    if char == "\t":
        return "a tab"
    if char == " ":
        return "a space"
    if code < 0x20 or code == 0x7F:
        return f"a control character (U+{code:04X})"
    return f"the non-ASCII character U+{code:04X}"


def check_secret(value: str, *, what: str, source: str) -> str:
    """``value`` without surrounding whitespace, if it can be sent as a bearer secret.

    ``what`` names the secret ("OpenAI API key", "fog node token") and ``source`` where
    it came from ("the OPENAI_API_KEY environment variable", a file path, ...). The error
    never contains the value.
    """
    secret = value.strip()
    if not secret:
        raise InvalidSecretError(
            f"The {what} from {source} is empty.",
            reason=f"{source[:1].upper() + source[1:]} holds no characters besides spaces.",
            suggestion=f"Put the {what} there, or remove the empty setting.",
        )
    for position, char in enumerate(secret, start=1):
        if not ("!" <= char <= "~"):
            problem = _describe(char)
            hint = (
                " Masked displays show a '…' in place of hidden characters: copy the key "
                "from where it was issued, not from a masked display."
                if char == "\u2026"
                else ""
            )
            raise InvalidSecretError(
                f"The {what} from {source} cannot be used.",
                reason=(
                    f"It contains {problem} at position {position} of {len(secret)}; keys "
                    f"and tokens are printable ASCII without spaces or line breaks.{hint}"
                ),
                suggestion=f"Copy the {what} again and enter it once more at {source}.",
            )
    return secret


def private_directory(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable only by the user; return it.

    Directories that already exist keep their mode: the user may have chosen it.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR_MODE)
            os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def write_private_file(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable only by the user (mode 0600).

    The bytes go to a temporary file in the same directory, created with mode 0600 (so
    no other user can open it at any moment), flushed to disk, then renamed over
    ``path``. Raises :class:`OSError` on failure, leaving any old file untouched.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    private_directory(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
