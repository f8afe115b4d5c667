"""The OpenAI platform: schema, platform (one httpx client) and session."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from backends.context import Context
from backends.errors import ConfigurationError
from backends.openai.chat import ChatCompletionsSchema
from backends.openai.client import (
    ChatCompletionsClient,
    ChatCompletionsSession,
    ErrorMapper,
    ModelInfo,
    RetryPolicy,
    static_token,
)
from backends.openai.errors import MissingAPIKeyError
from backends.openai.keys import KeyStore, ResolvedKey, resolve_api_key
from backends.openai.limits import Limits
from backends.secrets import Secret
from backends.session import Platform

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"


def resolve_base_url(configured: str | None = None) -> str:
    """``OPENAI_BASE_URL`` if set, else ``configured``, else the public API; validated."""
    url = (os.environ.get(BASE_URL_ENV) or configured or DEFAULT_BASE_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        source = BASE_URL_ENV if os.environ.get(BASE_URL_ENV) else "[openai] base_url"
        raise ConfigurationError(
            "The OpenAI base URL is invalid.",
            reason=f"{source} is {url!r}, which is not an http(s) URL with a host.",
            suggestion=f"Use a URL like {DEFAULT_BASE_URL}.",
        )
    return url.rstrip("/")


def requires_key(base_url: str) -> bool:
    """The public API needs a key; compatible servers elsewhere may run without one."""
    return (urlsplit(base_url).hostname or "").endswith("openai.com")


@dataclass(frozen=True, kw_only=True)
class OpenAISchema(ChatCompletionsSchema):
    """Configuration of one OpenAI model."""

    api_key: str | None = field(default=None, repr=False)
    """Overrides the platform's key resolution for this schema."""
    test_model_access: bool = True
    """Check with GET /models/{model} that the key can use the model before the first reply."""


class OpenAIPlatform(Platform[OpenAISchema]):
    """Runs :class:`OpenAISchema` sessions over one keep-alive ``httpx.AsyncClient``."""

    name = "openai"
    schema_type = OpenAISchema

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float = 60.0,
        idle_timeout: float = 120.0,
        max_concurrent_streams: int = 4,
        retry: RetryPolicy | None = None,
        key_store: KeyStore | None = None,
        errors: ErrorMapper | None = None,
    ) -> None:
        super().__init__(max_concurrent_streams=max_concurrent_streams)
        if timeout <= 0:
            raise ConfigurationError(
                "The OpenAI timeout is invalid.",
                reason=f"The timeout is {timeout}; it must be a positive number of seconds.",
                suggestion="Set a timeout (`OpenAIPlatform.timeout`) such as 60.",
            )
        if not idle_timeout > 0:
            raise ConfigurationError(
                "The OpenAI idle timeout is invalid.",
                reason=f"The idle timeout is {idle_timeout}; it must be a positive "
                "number of seconds.",
                suggestion="Set an idle timeout (`OpenAIPlatform.idle_timeout`) such as 120.",
            )
        self.base_url = resolve_base_url(base_url)
        self.timeout = timeout
        self.limits = Limits(idle_timeout=idle_timeout)
        """Idle timeout and size limits of every answer (see :class:`Limits`)."""
        self.retry = retry or RetryPolicy()
        self.errors = errors or ErrorMapper()
        self._api_key = Secret.of(api_key)
        self._key_store = key_store
        self._http: httpx.AsyncClient | None = None
        self._accessible: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"OpenAIPlatform(base_url={self.base_url!r})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The platform's HTTP client, created on first use."""
        if self._http is None or self._http.is_closed:
            from backends import __version__

            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0)),
                follow_redirects=False,
                headers={"User-Agent": f"spezichat/{__version__}"},
            )
        return self._http

    def resolve_key(self, override: str | Secret | None = None) -> ResolvedKey | None:
        """The key for a request: schema override, platform key, env, stored secret."""
        resolved = resolve_api_key(override or self._api_key, store=self._key_store)
        if resolved is None and requires_key(self.base_url):
            raise MissingAPIKeyError()
        return resolved

    def client(self, api_key: str | Secret | None = None) -> ChatCompletionsClient:
        """A client for this platform's base URL with the resolved key."""
        resolved = self.resolve_key(api_key)
        return ChatCompletionsClient(
            self.http,
            self.base_url,
            token=static_token(resolved.secret if resolved else None),
            errors=self.errors,
            retry=self.retry,
            limits=self.limits,
        )

    async def list_models(self, api_key: str | Secret | None = None) -> list[ModelInfo]:
        """The models the key can use (GET /models), sorted by id."""
        return await self.client(api_key).list_models()

    async def check_model_access(self, model: str, api_key: str | Secret | None = None) -> None:
        """GET /models/{model}; raises ModelAccessError (or another typed error) on failure."""
        resolved = self.resolve_key(api_key)
        fingerprint = hashlib.sha256((resolved.value if resolved else "").encode()).hexdigest()
        if (model, fingerprint) in self._accessible:
            return
        await self.client(api_key).retrieve_model(model)
        self._accessible.add((model, fingerprint))

    def session(self, schema: OpenAISchema, context: Context | None = None) -> OpenAISession:
        return OpenAISession(self, schema, context)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class OpenAISession(ChatCompletionsSession[OpenAISchema]):
    """A conversation with an OpenAI model."""

    platform: OpenAIPlatform

    async def _setup(self) -> None:
        if self.schema.test_model_access:
            check = self.platform.check_model_access(self.schema.model, self.schema.api_key)
            await self._unless_cancelled(check)
        else:
            self.platform.resolve_key(self.schema.api_key)  # fail early when none is set

    def chat_client(self) -> ChatCompletionsClient:
        return self.platform.client(self.schema.api_key)
