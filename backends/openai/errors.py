"""Typed errors of the OpenAI backend (and of every OpenAI-compatible server).

Each class carries the description/reason/suggestion triad of :class:`LLMError`. The HTTP
errors also keep what the server said (:class:`APIErrorInfo`), the status code and, for
retryable ones, how long the server asked us to wait. :class:`ErrorMapper` turns what
went wrong on the wire into these errors; other servers subclass it for their own.
The error classes live in :mod:`backends.openai.error_types` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from urllib.parse import urlsplit

import httpx

from backends.errors import ConfigurationError, LLMError, sentence
from backends.openai.diagnose import (
    UNKNOWN_PATH,
    clipped,
    request_url,
    safe_url,
    timeout_reason,
    verify_failure,
    wait_text,
)
from backends.openai.error_types import (
    BASE_URL_SETTING,
    APIErrorInfo,
    BaseURLError,
    CertificateError,
    ConnectivityError,
    IdleTimeoutError,
    IncompleteReplyError,
    InsufficientQuotaError,
    InvalidAPIKeyError,
    KeyStorageError,
    MissingAPIKeyError,
    ModelAccessError,
    OpenAIError,
    RateLimitError,
    RedirectError,
    RequestRejectedError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    StreamFormatError,
)
from backends.openai.limits import size_text

__all__ = [
    "BASE_URL_SETTING",
    "APIErrorInfo",
    "BaseURLError",
    "CertificateError",
    "ConnectivityError",
    "ErrorMapper",
    "IdleTimeoutError",
    "IncompleteReplyError",
    "InsufficientQuotaError",
    "InvalidAPIKeyError",
    "KeyStorageError",
    "MissingAPIKeyError",
    "ModelAccessError",
    "OpenAIError",
    "RateLimitError",
    "RedirectError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "StreamFormatError",
    "is_wrong_path",
    "retry_after",
    "service_cap",
]


def is_wrong_path(status: int, info: APIErrorInfo, *, model: str | None) -> bool:
    """Whether an error answer means the request went to a path that is not the API.

    A 404 whose body is no API error object (a web server's page, an empty body), or
    whose message says the URL is unknown, or a 404 for the model list itself. A 404
    that names a missing model (``model_not_found``) is about the model.
    """
    if status != 404 or info.code == "model_not_found":
        return False
    if not info.from_api or UNKNOWN_PATH.search(info.message):
        return True
    return model is None


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ErrorMapper:
    """Turns HTTP statuses, transport failures and broken streams into typed errors.

    Subclass it to use other error classes or wording (a fog node, Ollama); every method
    returns the error to raise. Set ``retryable = True`` (and ``retry_after``) on errors
    a :class:`RetryPolicy` may retry.
    """

    service = "the OpenAI API"

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
        """A non-2xx response to any request; ``model`` is set for chat and model requests,
        ``url`` is the request's address and ``base_url`` the API's."""
        wait = retry_after(headers)
        if 300 <= status < 400:
            return self.redirect(status, url, headers.get("location", ""))
        if status == 401:
            return InvalidAPIKeyError(status=status, info=info)
        if is_wrong_path(status, info, model=model):
            return self.wrong_base_url(status, info, url, base_url)
        if status in (403, 404) and model is not None:
            return ModelAccessError(
                f"The model '{model}' cannot be used with this API key.",
                status=status,
                info=info,
            )
        if status == 429:
            if "insufficient_quota" in (info.code, info.type):
                return InsufficientQuotaError(status=status, info=info)
            return RateLimitError(
                status=status, info=info, retry_after=wait, suggestion=_asked_wait(wait)
            )
        if status >= 500:
            return ServerError(
                reason=f"{service_cap(self.service)} answered HTTP {status}: "
                f"{info.message or 'no details'}",
                status=status,
                info=info,
                retry_after=wait,
                suggestion=_asked_wait(wait),
            )
        if 400 <= status < 500:
            return RequestRejectedError(
                reason=f"HTTP {status}: {info.message or 'no details'}", status=status, info=info
            )
        return OpenAIError(reason=f"Unexpected HTTP {status}: {info.message}", status=status)

    def redirect(self, status: int, url: str, location: str) -> LLMError:
        """A 3xx answer: named with where it points, never followed."""
        where = location.strip()
        if where and url:
            with contextlib.suppress(httpx.InvalidURL, ValueError):
                where = str(httpx.URL(url).join(where))
        target = safe_url(where) if where else "no address (the Location header is missing)"
        asker = safe_url(url) if url else service_cap(self.service)
        return RedirectError(
            f"{service_cap(self.service)} answered with a redirect, which spezichat does not "
            "follow.",
            reason=(
                f"{asker} answered HTTP {status}, redirecting to {target}. Redirects are not "
                "followed, so that the API key is never sent to another address."
            ),
            suggestion=(
                f"If the API moved, set the base URL ({BASE_URL_SETTING}) to its new address "
                "(the part before /models or /chat/completions); a redirect often means "
                "http:// where the server wants https://, or a base URL missing a part such "
                "as /v1."
            ),
            status=status,
        )

    def wrong_base_url(self, status: int, info: APIErrorInfo, url: str, base_url: str) -> LLMError:
        """A 404 from a path that is not the API (see :func:`is_wrong_path`)."""
        said = clipped(info.message) if info.message and info.from_api else ""
        what = f' ("{said}")' if said else " (not an API error message)"
        where = safe_url(url) if url else service_cap(self.service)
        base = safe_url(base_url) if base_url else ""
        reason = f"{where} answered HTTP {status}{what}: there is no API at that address"
        reason += f", so the base URL {base} seems wrong." if base else "."
        if base and not base.rstrip("/").endswith("/v1"):
            fix = (
                f"Check the base URL ({BASE_URL_SETTING}): OpenAI-compatible servers serve "
                f"the API under /v1, so try {base.rstrip('/')}/v1."
            )
        else:
            fix = (
                f"Check the base URL ({BASE_URL_SETTING}): it must be the address of the "
                "server's OpenAI-compatible API, such as https://api.openai.com/v1."
            )
        return BaseURLError(reason=reason, suggestion=fix, status=status, info=info)

    def stream_error(self, info: APIErrorInfo, *, partial: bool) -> LLMError:
        """An error object sent inside the event stream."""
        if partial:
            return IncompleteReplyError(
                reason=f"The server stopped the reply with an error: {info.message}", info=info
            )
        return OpenAIError(reason=f"The server reported an error: {info.message}", info=info)

    def transport_error(self, exc: httpx.TransportError, *, partial: bool) -> LLMError:
        """The connection failed, timed out or was cut."""
        if partial:
            why = (
                f"{service_cap(self.service)} sent nothing more within the timeout."
                if isinstance(exc, httpx.TimeoutException)
                else f"The connection broke in the middle of the reply ({_describe(exc)})."
            )
            return IncompleteReplyError(reason=why)
        url = request_url(exc)
        at = f" at {url}" if url else ""
        verify = verify_failure(exc)
        if verify is not None:
            return self.certificate_error(verify, url)
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeoutError(reason=timeout_reason(exc, url or self.service))
        if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError)):
            return ConnectivityError(
                reason=sentence(f"Could not reach {self.service}{at}: {_describe(exc)}")
            )
        # The connection was made: the server (or something in between) closed it.
        return ConnectivityError(
            f"{service_cap(self.service)} closed the connection without answering.",
            reason=sentence(
                f"The server{at} accepted the connection, then closed it before sending a "
                f"complete answer ({_describe(exc).rstrip('.')})"
            ),
            suggestion=(
                "Retry; if it keeps happening, check that the base URL "
                f"({BASE_URL_SETTING}) is an OpenAI-compatible API (http:// and https:// "
                "are not interchangeable) and that no proxy cuts the connection."
            ),
        )

    def certificate_error(self, verify: BaseException, url: str) -> LLMError:
        """The TLS certificate of ``url`` was not accepted."""
        detail = (getattr(verify, "verify_message", "") or str(verify)).strip().rstrip(".")
        origin = url or self.service
        with contextlib.suppress(ValueError):
            parts = urlsplit(url)
            if parts.scheme and parts.netloc:
                origin = f"{parts.scheme}://{parts.netloc}"
        reason = (
            f"The TLS certificate of {origin} was not accepted: {detail or 'verification failed'}. "
            "This is not a network problem, so it was not retried."
        )
        fix = CertificateError.suggestion
        if "expired" in detail.lower() or "not yet valid" in detail.lower():
            fix = (
                "Check this computer's date and time; if they are right, the server's "
                "certificate has expired and its operator must renew it."
            )
        return CertificateError(reason=reason, suggestion=fix)

    def stream_cut(self, *, partial: bool) -> LLMError:
        """The stream ended without a final chunk or ``[DONE]``."""
        if partial:
            return IncompleteReplyError()
        return ConnectivityError(
            reason=f"{service_cap(self.service)} closed the stream before sending anything."
        )

    def bad_chunk(self, data: str) -> LLMError:
        """A stream event that is not a chat-completion chunk."""
        return StreamFormatError(reason=f"Unreadable stream data: {data[:200]!r}")

    def request_refused(self, exc: Exception) -> LLMError:
        """httpx or h11 refused to build or send a request (a header they cannot carry).

        Their messages quote the offending value, which may be the key: only the kind
        of failure is reported.
        """
        return ConfigurationError(
            f"The request to {self.service} could not be sent.",
            reason=(
                f"The HTTP library refused it ({type(exc).__name__}): a header or the URL "
                "holds characters HTTP does not allow. The details are not shown, as they "
                "may contain the key or token."
            ),
            suggestion=(
                "Check the key or token (printable ASCII, one line) and the configured "
                "base URL and host name."
            ),
        )

    def no_events(self, size: int) -> LLMError:
        """A response labelled as an event stream whose body held no server-sent event."""
        return StreamFormatError(
            reason=(
                f"{service_cap(self.service)} answered with {size} bytes labelled "
                "text/event-stream, but none of them formed a server-sent event "
                "('data:' lines)."
            )
        )

    def idle_timeout(self, seconds: float, *, partial: bool) -> LLMError:
        """Nothing new arrived for ``seconds`` though the connection stayed open."""
        reason = (
            f"{service_cap(self.service)} sent nothing new for {seconds:g} s (the idle "
            "timeout): the connection stayed open, but only keep-alive messages or a "
            "trickle of bytes arrived."
        )
        if partial:
            return IdleTimeoutError(
                "The reply stalled and was stopped.",
                reason=reason,
                suggestion=(
                    "The partial reply is kept and marked incomplete; retry to get a full "
                    "one, or raise `OpenAIPlatform.idle_timeout`."
                ),
            )
        return IdleTimeoutError(reason=reason)

    def too_large(self, what: str, limit: int, *, partial: bool) -> LLMError:
        """``what`` (a line of the stream, the answer) is larger than ``limit`` bytes."""
        kept = "The partial reply is kept and marked incomplete. " if partial else ""
        return ResponseTooLargeError(
            reason=(
                f"{service_cap(self.service)} sent {what} larger than {size_text(limit)}; "
                "spezichat stopped reading there so that its memory stays bounded."
            ),
            suggestion=f"{kept}Check that the base URL points at an OpenAI-compatible API.",
        )

    def undecodable(self, why: str, *, partial: bool) -> LLMError:
        """The body could not be decompressed (an unknown coding, damaged data)."""
        kept = "The partial reply is kept and marked incomplete. " if partial else ""
        return StreamFormatError(
            reason=sentence(f"The answer of {self.service} could not be decompressed: {why}"),
            suggestion=f"{kept}Check that the base URL points at an OpenAI-compatible API.",
        )


def service_cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _asked_wait(wait: float | None) -> str | None:
    """The suggestion when the server named a wait (Retry-After), else ``None``."""
    if wait is None:
        return None
    return (
        f"The server asks to wait {wait_text(wait)} before the next request (Retry-After); "
        "try again after that."
    )
