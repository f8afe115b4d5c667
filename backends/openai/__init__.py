"""OpenAI over its HTTP API (httpx + httpx-sse, no SDK), and the core reused by fog nodes.

Use::

    from backends import Runner
    from backends.openai import OpenAIPlatform, OpenAISchema

    async with Runner([OpenAIPlatform()]) as runner:
        session = runner.session(OpenAISchema(model="gpt-4o-mini", temperature=0.2))
        session.context.append_user("Hello!")
        async for piece in session.generate():
            print(piece, end="")

Layers, from the wire up (each usable on its own):

``backends.openai.chat``
    :class:`ChatCompletionsSchema` (a :class:`~backends.session.Schema` with temperature,
    top_p, stop, max_tokens (sent as max_completion_tokens), seed, penalties, logit_bias,
    response_format, extra_body), :class:`ResponseFormat`, :func:`build_request_body`
    (schema + context -> CreateChatCompletionRequest with ``stream`` and
    ``stream_options.include_usage``) and :class:`StreamAccumulator` (chunks ->
    TextDelta/Usage events; tool-call fragments assembled by ``index`` into one final
    ToolCallsDone).

``backends.openai.client``
    :class:`ChatCompletionsClient` (http, base_url, token=, errors=, retry=, headers=,
    extensions=, limits=): ``stream_chat(body, cancel=)``, ``list_models()``,
    ``retrieve_model(id)``, ``get_json(path)``. It never owns the ``httpx.AsyncClient``
    (bring your own, with your TLS verification), sends the token only under
    ``base_url``, follows no redirects, retries failures that happened before any
    output, and parses the spec's ErrorResponse into :class:`APIErrorInfo`.

    * :class:`TokenProvider`: ``async (refresh: bool) -> Secret | str | None``; after a
      401 it is asked once with ``refresh=True`` and the request is repeated if the token
      changed. :func:`static_token` wraps a fixed key. The token is checked and set by
      :class:`BearerAuth`; a bad one raises InvalidSecretError, never quoting it.
    * :class:`ErrorMapper`: subclass and override ``http_error(status, info, headers,
      model=)``, ``stream_error``, ``transport_error``, ``stream_cut``, ``bad_chunk``,
      ``idle_timeout``, ``too_large``, ``undecodable`` to
      raise your own :class:`~backends.errors.LLMError` subclasses; set ``retryable``
      (and ``retry_after``) on those a :class:`RetryPolicy` may retry.
    * :class:`Limits` (``backends.openai.limits``): the idle timeout (no new content:
      keep-alive comments and single bytes do not count) and the most read of an event
      line or event (4 MiB), a whole answer (16 MiB, decompressed a bounded piece at a
      time) and an error body (64 KiB).
    * ``extensions`` are httpx request extensions, e.g. ``{"sni_hostname": "node.local"}``;
      ``headers`` are sent with every request (e.g. a ``Host`` override).
    * :class:`ChatCompletionsSession`: implement ``chat_client()`` (and optionally
      ``_setup()`` and ``request_body(context)``); streaming, cancellation (also while
      waiting for the server) and retries are done. A backend that picks its server per
      request (the fog backend fails over between nodes) subclasses
      :class:`ChatStreamSession` and implements ``stream_reply(context, cancel)`` instead.

``backends.openai.platform``
    :class:`OpenAISchema` (+ ``api_key`` override, ``test_model_access``),
    :class:`OpenAIPlatform` (base URL: ``OPENAI_BASE_URL`` > configured > public API;
    timeout; concurrent-stream limit; model list; model access test) and
    :class:`OpenAISession`.

``backends.openai.keys``
    Key resolution (explicit > ``OPENAI_API_KEY`` > keyring or a 0600 file) and
    :class:`KeyStore` for ``spezichat key``.

``backends.openai.errors``
    :class:`MissingAPIKeyError`, :class:`InvalidAPIKeyError` (401),
    :class:`ModelAccessError` (403/404), :class:`InsufficientQuotaError` (429, not
    retried), :class:`RateLimitError` (429, retried honouring Retry-After),
    :class:`ServerError` (5xx, retried before any token), :class:`ConnectivityError`,
    :class:`RequestTimeoutError`, :class:`IdleTimeoutError` (nothing new for the idle
    timeout), :class:`ResponseTooLargeError`, :class:`IncompleteReplyError` (stream cut mid-reply;
    the partial reply stays in the context, marked incomplete), :class:`RequestRejectedError`,
    :class:`StreamFormatError`, :class:`KeyStorageError`; all subclass :class:`OpenAIError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

_EXPORTS = {
    "ChatCompletionsSchema": "chat",
    "ResponseFormat": "chat",
    "StreamAccumulator": "chat",
    "build_request_body": "chat",
    "ChatCompletionsClient": "client",
    "ChatCompletionsSession": "client",
    "ChatStreamSession": "client",
    "ErrorMapper": "client",
    "ModelInfo": "client",
    "RetryPolicy": "client",
    "TokenProvider": "client",
    "static_token": "client",
    "APIErrorInfo": "errors",
    "ConnectivityError": "errors",
    "IdleTimeoutError": "errors",
    "IncompleteReplyError": "errors",
    "InsufficientQuotaError": "errors",
    "InvalidAPIKeyError": "errors",
    "KeyStorageError": "errors",
    "MissingAPIKeyError": "errors",
    "ModelAccessError": "errors",
    "OpenAIError": "errors",
    "RateLimitError": "errors",
    "RequestRejectedError": "errors",
    "RequestTimeoutError": "errors",
    "ResponseTooLargeError": "errors",
    "ServerError": "errors",
    "StreamFormatError": "errors",
    "Limits": "limits",
    "KeyStore": "keys",
    "ResolvedKey": "keys",
    "mask_key": "keys",
    "resolve_api_key": "keys",
    "DEFAULT_BASE_URL": "platform",
    "OpenAIPlatform": "platform",
    "OpenAISchema": "platform",
    "OpenAISession": "platform",
    "resolve_base_url": "platform",
}

__all__ = [
    "DEFAULT_BASE_URL",
    "APIErrorInfo",
    "ChatCompletionsClient",
    "ChatCompletionsSchema",
    "ChatCompletionsSession",
    "ChatStreamSession",
    "ConnectivityError",
    "ErrorMapper",
    "IdleTimeoutError",
    "IncompleteReplyError",
    "InsufficientQuotaError",
    "InvalidAPIKeyError",
    "KeyStorageError",
    "KeyStore",
    "Limits",
    "MissingAPIKeyError",
    "ModelAccessError",
    "ModelInfo",
    "OpenAIError",
    "OpenAIPlatform",
    "OpenAISchema",
    "OpenAISession",
    "RateLimitError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "ResolvedKey",
    "ResponseFormat",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "StreamAccumulator",
    "StreamFormatError",
    "TokenProvider",
    "build_request_body",
    "mask_key",
    "resolve_api_key",
    "resolve_base_url",
    "static_token",
]

if TYPE_CHECKING:
    from backends.openai.chat import (
        ChatCompletionsSchema,
        ResponseFormat,
        StreamAccumulator,
        build_request_body,
    )
    from backends.openai.client import (
        ChatCompletionsClient,
        ChatCompletionsSession,
        ChatStreamSession,
        ErrorMapper,
        ModelInfo,
        RetryPolicy,
        TokenProvider,
        static_token,
    )
    from backends.openai.errors import (
        APIErrorInfo,
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
        RequestRejectedError,
        RequestTimeoutError,
        ResponseTooLargeError,
        ServerError,
        StreamFormatError,
    )
    from backends.openai.keys import KeyStore, ResolvedKey, mask_key, resolve_api_key
    from backends.openai.limits import Limits
    from backends.openai.platform import (
        DEFAULT_BASE_URL,
        OpenAIPlatform,
        OpenAISchema,
        OpenAISession,
        resolve_base_url,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
