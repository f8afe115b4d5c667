"""Secrets (API keys, bearer tokens) checked where they enter, and files kept private.

A key goes into an HTTP ``Authorization`` header, so it must be printable ASCII without
spaces. :func:`check_secret` enforces that at every entry point (the onboarding field,
``key set``, environment variables, files, token commands) and raises
:class:`~backends.errors.InvalidSecretError` naming the source and the problem, never the
value. :class:`Secret` carries a checked key with a masked ``repr``, so that tracebacks
printed with local variables (Textual's crash report) and worker descriptions never show
it. :func:`write_private_file` is the one way spezichat writes a secret or private file:
atomically, with mode 0600 from the first byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
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


def _invalid(
    value: str, what: str, source: str, error: type[InvalidSecretError]
) -> InvalidSecretError | None:
    """The error to raise when ``value`` cannot be a bearer secret, else ``None``."""
    secret = value.strip()
    if not secret:
        return error(
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
            return error(
                f"The {what} from {source} cannot be used.",
                reason=(
                    f"It contains {problem} at position {position} of {len(secret)}; keys "
                    f"and tokens are printable ASCII without spaces or line breaks.{hint}"
                ),
                suggestion=f"Copy the {what} again from where it was issued, and check {source}.",
            )
    return None


def check_secret(
    value: str,
    *,
    what: str,
    source: str,
    error: type[InvalidSecretError] = InvalidSecretError,
) -> str:
    """``value`` without surrounding whitespace, if it can be sent as a bearer secret.

    ``what`` names the secret ("OpenAI API key", "fog node token") and ``source`` where
    it came from ("the OPENAI_API_KEY environment variable", a file path, ...). Raises
    ``error`` (an :class:`InvalidSecretError` subclass), which never contains the value;
    the raising frame no longer holds it either, so a traceback with local variables
    cannot show it.
    """
    problem = _invalid(value, what, source, error)
    if problem is not None:
        del value
        raise problem
    return value.strip()


class Secret:
    """A key or token that does not show itself: ``repr`` and ``str`` are masked.

    Carry secrets in this wrapper rather than as plain strings, so that a traceback
    printed with local variables (Textual's crash report), a log line or a worker's
    description never contains them; :meth:`reveal` gives the value where it is used
    (the ``Authorization`` header, the key file). Equality is constant-time and also
    holds against the plain string.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def checked(
        cls,
        value: str | Secret,
        *,
        what: str,
        source: str,
        error: type[InvalidSecretError] = InvalidSecretError,
    ) -> Secret:
        """:func:`check_secret` for a plain or wrapped value; the result is wrapped."""
        plain = value.reveal() if isinstance(value, Secret) else value
        del value
        problem = _invalid(plain, what, source, error)
        if problem is not None:
            del plain
            raise problem
        return cls(plain.strip())

    @classmethod
    def of(cls, value: str | Secret | None) -> Secret | None:
        """``value`` wrapped (unchanged if it already is), ``None`` for nothing or ``""``."""
        if isinstance(value, Secret):
            return value if value._value else None
        return cls(value) if value else None

    def reveal(self) -> str:
        """The secret itself: only for where it must go (a header, a private file)."""
        return self._value

    def fingerprint(self) -> str:
        """A SHA-256 hex digest: tells secrets apart without keeping them."""
        return hashlib.sha256(self._value.encode("utf-8", "surrogatepass")).hexdigest()

    def __repr__(self) -> str:
        return f"Secret(<hidden, {len(self._value)} characters>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other._value
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"), other.encode("utf-8", "surrogatepass")
        )

    def __hash__(self) -> int:
        return hash(self._value)


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


def make_private(path: Path, *, create: bool = False) -> None:
    """Take group and other permissions from the file ``path``; ``create`` it if missing.

    A file created here is empty and 0600 (for a program that then opens and fills it,
    such as SQLite). Raises :class:`OSError`, :class:`FileNotFoundError` included when
    ``path`` is missing and ``create`` is false.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            os.fchmod(fd, mode & PRIVATE_FILE_MODE or PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
