"""The typed errors of the OpenAI backend and what the server said (:class:`APIErrorInfo`).

Split from :mod:`backends.openai.errors`, which re-exports every name here and holds
the :class:`~backends.openai.errors.ErrorMapper` that builds these errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.errors import LLMError

BASE_URL_SETTING = "`OpenAIPlatform.base_url` or OPENAI_BASE_URL"


@dataclass(frozen=True)
class APIErrorInfo:
    """The ``error`` object of the spec's ErrorResponse (message, type, param, code).

    Servers that only look like OpenAI send ``{"error": "text"}`` or no JSON at all; those
    parse into ``message`` alone.
    """

    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    from_api: bool = False
    """Whether the body was an API's error object (``{"error": ...}`` or ``{"message":
    ...}``), not a web server's page or an empty body."""

    @classmethod
    def parse(cls, payload: Any, fallback: str = "") -> APIErrorInfo:
        """Read an ErrorResponse body (already decoded JSON, or raw text)."""
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            return cls(
                message=str(error.get("message") or fallback),
                type=_text(error.get("type")),
                code=_text(error.get("code")),
                param=_text(error.get("param")),
                from_api=True,
            )
        if isinstance(error, str):
            return cls(message=error, from_api=True)
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            return cls(message=payload["message"], type=_text(payload.get("type")), from_api=True)
        if isinstance(payload, str) and payload.strip():
            return cls(message=payload.strip()[:500])
        return cls(message=fallback)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class OpenAIError(LLMError):
    """Base class of the errors raised while talking to an OpenAI-compatible API."""

    description = "Generation Error occurred during OpenAI inference."
    reason = "The OpenAI API responded with an error during the output generation."
    suggestion = "Retry the request."

    retryable: bool = False
    """Whether sending the same request again may succeed (before any token arrived)."""

    def __init__(
        self,
        description: str | None = None,
        *,
        reason: str | None = None,
        suggestion: str | None = None,
        status: int | None = None,
        info: APIErrorInfo | None = None,
        retry_after: float | None = None,
    ) -> None:
        if reason is None and info is not None and info.message:
            reason = f"{type(self).reason} The server said: {info.message}"
        super().__init__(description, reason=reason, suggestion=suggestion)
        self.status = status
        self.info = info
        self.retry_after = retry_after
        """Seconds the server asked us to wait before retrying (Retry-After)."""


class MissingAPIKeyError(OpenAIError):
    description = "No OpenAI API key is set."
    reason = "spezichat found no key: none was given, OPENAI_API_KEY is unset and none is stored."
    suggestion = "Set the OPENAI_API_KEY environment variable, or pass api_key to OpenAIPlatform."


class InvalidAPIKeyError(OpenAIError):
    description = "The OpenAI API key is invalid."
    reason = "The server rejected the API key (HTTP 401)."
    suggestion = (
        "Check the key at https://platform.openai.com/api-keys, then pass the right one as "
        "api_key to OpenAIPlatform or set OPENAI_API_KEY."
    )


class ModelAccessError(OpenAIError):
    description = "The model cannot be used with this API key."
    reason = "The server does not offer the model to this key (HTTP 403 or 404)."
    suggestion = (
        "Pick a model your key can use (`OpenAIPlatform.list_models` lists them), "
        "or check the model name for typos."
    )


class InsufficientQuotaError(OpenAIError):
    description = "The OpenAI quota is used up."
    reason = "The account behind the API key has no quota or credit left (HTTP 429)."
    suggestion = "Add credit or raise the limits of the account, then try again."


class RateLimitError(OpenAIError):
    description = "The OpenAI API is rate limiting this key."
    reason = "Too many requests or tokens were sent in a short time (HTTP 429)."
    suggestion = "Wait a moment and try again, or send fewer requests at once."
    retryable = True


class ServerError(OpenAIError):
    description = "The OpenAI server failed to answer."
    reason = "The server reported an internal error (HTTP 5xx)."
    suggestion = "Try again in a moment; check https://status.openai.com if it persists."
    retryable = True


class RequestRejectedError(OpenAIError):
    description = "The OpenAI API rejected the request."
    reason = "The server refused the request as invalid."
    suggestion = "Check the request's parameters (the server names the problem)."


class ConnectivityError(OpenAIError):
    description = "Connectivity Error with the OpenAI API."
    reason = "The network connection to the server could not be established."
    suggestion = f"Check the network connection and the base URL ({BASE_URL_SETTING}), then retry."
    retryable = True


class RequestTimeoutError(OpenAIError):
    description = "The OpenAI API did not answer in time."
    reason = "The server sent nothing within the configured timeout."
    suggestion = "Try again, or raise the timeout (`OpenAIPlatform.timeout`)."


class IncompleteReplyError(OpenAIError):
    description = "The reply is incomplete: the stream was cut off."
    reason = "The connection ended before the server finished the reply."
    suggestion = "The partial reply is kept and marked incomplete; retry to get a full one."


class StreamFormatError(OpenAIError):
    description = "The server sent a reply spezichat cannot read."
    reason = "A streamed chunk was not valid JSON in the chat-completions format."
    suggestion = "Check that the base URL points at an OpenAI-compatible API."


class IdleTimeoutError(RequestTimeoutError):
    """The connection stayed open, but no new content came (keep-alive messages or a
    trickle of bytes only) for longer than the idle timeout."""

    description = "The OpenAI API stopped sending the reply."
    reason = "Nothing new arrived within the idle timeout, though the connection stayed open."
    suggestion = (
        "Try again; if the model needs longer to start answering, raise "
        "`OpenAIPlatform.idle_timeout`."
    )


class ResponseTooLargeError(StreamFormatError):
    """A line, event, answer or compressed body grew past what spezichat reads."""

    description = "The server sent more than spezichat accepts."
    reason = "A part of the answer was larger than the limit spezichat reads."
    suggestion = "Check that the base URL points at an OpenAI-compatible API."


class BaseURLError(OpenAIError):
    """A 404 from a path that is not the API: the base URL leads somewhere else."""

    description = "The base URL does not lead to an OpenAI-compatible API."
    reason = "The server answered HTTP 404: it has nothing at the API's address."
    suggestion = f"Check the base URL ({BASE_URL_SETTING}), for example https://api.openai.com/v1."


class RedirectError(OpenAIError):
    """The server answered with a redirect (HTTP 3xx), which is never followed."""

    description = "The server answered with a redirect, which spezichat does not follow."
    reason = "Redirects are not followed, so that the API key never goes to another address."
    suggestion = f"If the new address is the API, set it as the base URL ({BASE_URL_SETTING})."


class CertificateError(OpenAIError):
    """The server's TLS certificate could not be verified (not a network problem)."""

    description = "No secure connection: the server's TLS certificate could not be verified."
    reason = "The certificate is not signed by an authority this computer trusts."
    suggestion = (
        "If the server uses a private certificate authority (a company proxy, a server of "
        "your own), set SSL_CERT_FILE to a PEM file holding that authority's certificate; "
        "otherwise check the base URL and this computer's date and time."
    )


class KeyStorageError(OpenAIError):
    description = "The API key could not be stored."
    reason = "Neither the system keyring nor the key file could be written."
    suggestion = "Check the permissions of the config directory, or use OPENAI_API_KEY instead."
