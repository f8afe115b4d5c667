"""The bearer token of OpenAI-compatible requests: where it comes from, how it is sent.

A :class:`TokenProvider` hands out the token as a :class:`~backends.secrets.Secret`
(masked ``repr``); :class:`BearerAuth` checks it and sets the ``Authorization`` header on
the request itself. So no plain key sits in a local variable of the request code (Textual
prints tracebacks with local variables), and a key that httpx or h11 would refuse, and
quote in their error, raises :class:`~backends.errors.InvalidSecretError` naming where
it came from instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Protocol

import httpx

from backends.secrets import Secret, check_secret


class TokenProvider(Protocol):
    """Supplies the bearer token; ``refresh=True`` after a 401 asks for a new one.

    Returning ``None`` sends no Authorization header. Returning the same token on a
    refresh means "no better token": the 401 is then reported. Return a
    :class:`~backends.secrets.Secret` (a plain string is accepted and wrapped). A
    ``source`` attribute, when present, names where the token comes from in errors.
    """

    def __call__(self, *, refresh: bool = False) -> Awaitable[str | Secret | None]: ...


def static_token(token: str | Secret | None) -> TokenProvider:
    """A provider that always returns ``token``."""
    secret = Secret.of(token)
    del token

    async def provide(*, refresh: bool = False) -> Secret | None:
        return secret

    return provide


class BearerAuth(httpx.Auth):
    """Sets ``Authorization: Bearer <token>`` on each request it is given.

    The token is checked first (printable ASCII, no spaces): one that would make httpx
    or h11 fail, and print it in their error, raises
    :class:`~backends.errors.InvalidSecretError` naming ``source`` instead.
    """

    def __init__(self, token: Secret, *, what: str, source: str) -> None:
        self._token = token
        self.what = what
        self.source = source

    def __repr__(self) -> str:
        return f"BearerAuth(source={self.source!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        check_secret(self._token.reveal(), what=self.what, source=self.source)
        request.headers["Authorization"] = "Bearer " + self._token.reveal()
        yield request
