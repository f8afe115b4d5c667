"""Talking to one fog node: the OpenAI-compatible client with fog errors, and health checks.

A fog node speaks the OpenAI chat-completions API, so requests go through
:class:`backends.openai.client.ChatCompletionsClient` with three fog specifics: the
expected host as SNI and ``Host`` header, the fog token provider (never an OpenAI key),
and :class:`FogErrorMapper`, which reports failures as :mod:`backends.fog.errors`.
Retries are off: the platform fails over to the next node instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from backends.errors import LLMError, sentence
from backends.fog.config import FogConfig
from backends.fog.errors import (
    FogCertificateError,
    FogConnectivityError,
    FogError,
    FogGenerationError,
    FogIdleTimeoutError,
    FogModelNotFoundError,
    FogResponseTooLargeError,
    FogUnauthorizedError,
    error_for_status,
    model_not_found_in,
)
from backends.fog.tls import check_url_allowed, connection_error, sni_for
from backends.openai.client import (
    ChatCompletionsClient,
    ErrorMapper,
    RetryPolicy,
)
from backends.openai.errors import APIErrorInfo
from backends.openai.limits import Limits, size_text

KEPT = "The text so far is kept; retry to get a complete reply."


class FogErrorMapper(ErrorMapper):
    """Maps HTTP and transport failures of one node to fog errors."""

    def __init__(self, url: str, config: FogConfig) -> None:
        self.url = url
        self.config = config
        self.service = f"the fog node at {url}"

    def http_error(
        self,
        status: int,
        info: APIErrorInfo,
        headers: httpx.Headers,
        *,
        model: str | None,
        url: str = "",
        base_url: str = "",
    ) -> LLMError:
        if 300 <= status < 400:
            return redirect_error(self.url, status, headers.get("location", ""))
        error = error_for_status(status, info.message, model=model or "", node=self.url)
        if isinstance(error, FogUnauthorizedError):
            token = self.config.token
            if token is not None and not self.config.may_send_token(self.url):
                from backends.fog.plain_http import not_allowed_error

                allow = not_allowed_error("The node", self.url)
                error.reason = (
                    f"{self.url} answered HTTP {status}. The token was not sent: the node "
                    "uses plain HTTP on the network and is not on your allow list."
                )
                error.suggestion = allow.suggestion
                error.allow_entry = allow.allow_entry
                return error
            source = (
                f"The token from {token.source} was not accepted."
                if token is not None
                else "No bearer token is configured, and the node requires one."
            )
            error.reason = f"{self.url} answered HTTP {status}. {source}"
        return error

    def stream_error(self, info: APIErrorInfo, *, partial: bool) -> LLMError:
        missing = model_not_found_in(info.message)
        if missing is not None and not partial:
            return FogModelNotFoundError(missing, self.url, detail=info.message)
        where = " in the middle of the reply" if partial else ""
        return FogGenerationError(reason=f"{self.url} reported an error{where}: {info.message}")

    def transport_error(self, exc: httpx.TransportError, *, partial: bool) -> LLMError:
        if partial:
            return FogGenerationError(
                "The connection to the fog node broke in the middle of the reply.",
                reason=f"{self.url}: {type(exc).__name__} {exc}".strip(),
                suggestion=KEPT,
            )
        return connection_error(exc, self.url, self.config)

    def stream_cut(self, *, partial: bool) -> LLMError:
        if partial:
            return FogGenerationError(
                "The fog node stopped the reply before it was complete.",
                reason=f"{self.url} closed the stream without a final message.",
                suggestion=KEPT,
            )
        return FogConnectivityError(reason=f"{self.url} closed the stream before sending anything.")

    def bad_chunk(self, data: str) -> LLMError:
        return FogGenerationError(
            reason=f"{self.url} sent data that is not an OpenAI chat stream: {data[:200]!r}"
        )

    def idle_timeout(self, seconds: float, *, partial: bool) -> LLMError:
        reason = (
            f"{self.url} sent nothing new for {seconds:g} s (the idle timeout): the "
            "connection stayed open, but only keep-alive messages or a trickle of bytes "
            "arrived."
        )
        if partial:
            return FogIdleTimeoutError(
                "The fog node stalled in the middle of the reply.",
                reason=reason,
                suggestion=f"{KEPT} If the node is only slow, raise `FogConfig.idle_timeout`.",
            )
        return FogIdleTimeoutError(reason=reason)

    def too_large(self, what: str, limit: int, *, partial: bool) -> LLMError:
        return FogResponseTooLargeError(
            reason=(
                f"{self.url} sent {what} larger than {size_text(limit)}; spezichat "
                "stopped reading there so that its memory stays bounded."
            ),
            suggestion=KEPT if partial else FogGenerationError.suggestion,
        )

    def undecodable(self, why: str, *, partial: bool) -> LLMError:
        return FogGenerationError(
            reason=sentence(f"The answer of {self.url} could not be decompressed: {why}"),
            suggestion=KEPT if partial else FogGenerationError.suggestion,
        )


def redirect_error(url: str, status: int, location: str) -> FogConnectivityError:
    """A node answered with a redirect: never followed, since the request carries the
    token and the new URL (plain HTTP, another host) was not checked."""
    from backends.untrusted import one_line

    where = f" to {one_line(location)[:200]}" if location else ""
    return FogConnectivityError(
        "The fog node answered with a redirect, which is not followed.",
        reason=(
            f"{url} answered HTTP {status}{where}. Redirects are refused so that the "
            "bearer token never travels to a URL you did not choose (plain HTTP included)."
        ),
        suggestion=(
            "Configure the node's final address: its https:// URL in manual_nodes, or "
            "advertise the port it really serves on."
        ),
    )


def api_base(url: str) -> str:
    """The OpenAI API base of a node URL (``https://host:port`` -> ``.../v1``)."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def node_client(http: httpx.AsyncClient, url: str, config: FogConfig) -> ChatCompletionsClient:
    """A chat-completions client for one node URL (``https://10.0.0.5:443``).

    Refuses plain HTTP to other machines unless allowed. Sends only the fog token, and
    only where :meth:`FogConfig.may_send_token` says so: a plain-HTTP node on another
    host that the user did not name (allowed by ``allow_http`` alone) gets no token.
    Redirects are never followed.
    """
    check_url_allowed(url, config)
    headers, extensions = sni_for(url, config)
    return ChatCompletionsClient(
        http,
        api_base(url),
        token=config.token if config.may_send_token(url) else None,
        errors=FogErrorMapper(url, config),
        retry=RetryPolicy(max_attempts=1),
        headers=headers,
        extensions=extensions,
        token_name="fog node token",
        limits=Limits(idle_timeout=config.idle_timeout),
    )


@dataclass(frozen=True)
class Probe:
    """What a health check learned about a node."""

    url: str | None
    """The first URL that answered, ``None`` when none did."""
    models: tuple[str, ...] = ()
    """Model ids from GET /v1/models."""
    latency_ms: float | None = None
    """How long the answering request took."""
    error: FogError | None = None
    """Why no URL answered (the error of the last one tried)."""


async def probe(http: httpx.AsyncClient, urls: Sequence[str], config: FogConfig) -> Probe:
    """Health-check a node: GET /v1/models on each URL until one answers.

    The token is fetched first, outside the health timeout: a token command has its own
    (see :class:`backends.fog.auth.CommandToken`).
    """
    import asyncio

    error: FogError | None = None
    for url in urls:
        try:
            if config.token is not None and config.may_send_token(url):
                # A token command that hangs is its own error, not a slow node.
                await config.token()
        except FogError as exc:
            error = exc
            break
        start = time.perf_counter()
        try:
            client = node_client(http, url, config)
            models = await asyncio.wait_for(client.list_models(), config.health_timeout)
        except asyncio.TimeoutError:
            error = FogConnectivityError(
                "The fog node did not answer the health check in time.",
                reason=f"GET {api_base(url)}/models took longer than {config.health_timeout:g} s.",
            )
            continue
        except FogError as exc:
            error = exc
            if isinstance(exc, (FogUnauthorizedError, FogCertificateError)):
                break  # the next address is the same server: same answer
            continue
        except LLMError as exc:
            error = FogGenerationError(reason=exc.reason)
            continue
        latency = (time.perf_counter() - start) * 1000
        return Probe(url, tuple(m.id for m in models), round(latency, 1))
    return Probe(None, error=error)
