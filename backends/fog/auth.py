"""Bearer tokens for fog nodes.

A token provider is asked for the token before every request, as SpeziLLM's fog target
does (sessions may live longer than a token). Providers: a fixed token, an environment
variable read on each request, a file, or a command whose output is the token (run once,
cached until a node answers 401, then run again). Providers fit the token protocol of the
OpenAI-compatible client, which asks again with ``refresh=True`` after a 401.

Every token is checked where it enters (:func:`backends.secrets.check_secret`): one with
a line break, a space or a non-ASCII character raises :class:`FogInvalidTokenError`
naming its source, never the token. Tokens are handed out as
:class:`~backends.secrets.Secret` so that they do not show in tracebacks or logs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from backends.errors import InvalidSecretError, sentence
from backends.fog.errors import FogTokenError
from backends.secrets import Secret
from backends.untrusted import one_line

TOKEN_ENV = "SPEZICHAT_FOG_TOKEN"
WHAT = "fog node token"


class FogInvalidTokenError(FogTokenError, InvalidSecretError):
    """A token source produced a token that cannot be sent (not printable ASCII)."""

    description = "The fog node token cannot be used."


def _checked(value: str | Secret, source: str) -> Secret:
    return Secret.checked(value, what=WHAT, source=source, error=FogInvalidTokenError)


class TokenProvider(Protocol):
    """Where the bearer token comes from (fits :class:`backends.openai.client.TokenProvider`).

    Called before every request; ``refresh=True`` after a 401 asks for a new token.
    Returning ``None`` sends no Authorization header.
    """

    source: str
    """Human-readable origin of the token, used in error messages."""

    async def __call__(self, *, refresh: bool = False) -> Secret | None: ...


class StaticToken:
    """A token given directly (for example typed during onboarding)."""

    def __init__(self, token: str | Secret, source: str = "the configured token") -> None:
        self._token = Secret.of(token)
        del token
        self.source = source

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return f"StaticToken(source={self.source!r})"

    async def __call__(self, *, refresh: bool = False) -> Secret | None:
        if self._token is None or not self._token.reveal().strip():
            return None
        return _checked(self._token, self.source)


class EnvToken:
    """The token in an environment variable, read on every request."""

    def __init__(self, variable: str = TOKEN_ENV) -> None:
        self.variable = variable
        self.source = f"the environment variable {variable}"

    def __repr__(self) -> str:
        return f"EnvToken({self.variable!r})"

    async def __call__(self, *, refresh: bool = False) -> Secret | None:
        value = Secret.of(os.environ.get(self.variable, "").strip())
        return _checked(value, self.source) if value is not None else None


class FileToken:
    """The token stored in a file (read on every request, so edits apply at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = f"the token file {path}"

    def __repr__(self) -> str:
        return f"FileToken({str(self.path)!r})"

    async def __call__(self, *, refresh: bool = False) -> Secret | None:
        try:
            value = Secret.of(self.path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise FogTokenError(
                reason=f"The token file {self.path} could not be read: "
                f"{why or type(exc).__name__}.",
                suggestion="Check the file's path and permissions, or store the token again.",
            ) from None  # a decoding error would carry the file's bytes
        return _checked(value, self.source) if value is not None else None


class CommandToken:
    """The standard output of a command, cached until a node refuses it.

    The command runs in its own process group (session). When it does not finish within
    ``timeout`` seconds, or the request that waits for it is cancelled (a health check
    that timed out, spezichat exiting), the whole group is killed: the shell and whatever
    it started. A command that hangs is reported as such, not as a slow node.
    """

    def __init__(self, command: str, *, timeout: float = 10.0, min_age: float = 2.0) -> None:
        self.command = command
        self.timeout = timeout
        """Seconds the command may run."""
        self.min_age = min_age
        """A token fetched by a refresh less than this many seconds ago is not fetched
        again: several requests refused at once (or one refusal asked about twice) then
        run the command once."""
        self.source = f"the token command `{command}`"
        self._cached: Secret | None = None
        self._refreshed: float | None = None
        self._lock = asyncio.Lock()
        self.runs = 0
        """How many times the command ran (shown by diagnostics)."""

    def __repr__(self) -> str:
        return f"CommandToken({self.command!r})"

    async def __call__(self, *, refresh: bool = False) -> Secret | None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            just_refreshed = self._refreshed is not None and now - self._refreshed < self.min_age
            if self._cached is None or (refresh and not just_refreshed):
                self._cached = await self._run()
                if refresh:
                    self._refreshed = now
            return self._cached

    async def _run(self) -> Secret:
        self.runs += 1
        try:
            process = await asyncio.create_subprocess_shell(
                self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: a timeout ends all of it
            )
        except (OSError, ValueError) as exc:
            raise FogTokenError(
                reason=sentence(f"The token command `{self.command}` could not be started: {exc}"),
                suggestion="Check the command and that the program it runs is on PATH.",
            ) from exc
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            raise FogTokenError(
                reason=f"The token command `{self.command}` did not finish in "
                f"{self.timeout:g} s; it was stopped.",
                suggestion=(
                    "Run the command by hand to see where it hangs (a login prompt?), or "
                    "raise `CommandToken.timeout` if it is only slow."
                ),
            ) from None
        except BaseException:  # cancelled while it runs: it must not outlive the request
            _kill_group(process.pid)
            await asyncio.shield(process.wait())  # reaped, its pipes closed
            raise
        if process.returncode != 0:
            del out  # whatever it printed may be a token
            last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise FogTokenError(
                reason=f"The token command `{self.command}` exited with status "
                f"{process.returncode} ({one_line(last[0])}).",
                suggestion="Run the command by hand and fix what it reports.",
            )
        token = Secret.of(out.decode(errors="replace").strip())
        del out
        if token is None:
            raise FogTokenError(
                reason=f"The token command `{self.command}` printed nothing.",
                suggestion="The command must print the bearer token on standard output.",
            )
        return _checked(token, f"the output of {self.source}")


def _kill_group(pid: int) -> None:
    """Kill the shell that runs a token command and everything it started."""
    import signal

    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):  # already gone
        pass
