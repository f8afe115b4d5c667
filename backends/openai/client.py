"""Streaming chat completions over httpx: the reusable core of OpenAI-compatible backends.

:class:`ChatCompletionsClient` sends requests to one base URL through a caller-owned
``httpx.AsyncClient``: it streams ``/chat/completions`` with SSE, lists and
retrieves models, attaches the bearer token from a :class:`TokenProvider`, retries what
may succeed on a second try (:class:`RetryPolicy`) and turns every failure into a typed
error through an :class:`ErrorMapper`. :class:`ChatCompletionsSession` is a session that
streams through such a client; a platform only says which client a session uses.

Every body is read within the client's :class:`~backends.openai.limits.Limits`: a reply
that brings no new content for the idle timeout is stopped (however busy the connection
is with keep-alive comments), and lines, events, answers and error bodies are read only
up to a size, decompressed a bounded piece at a time.

The token travels as a :class:`backends.secrets.Secret` down to
:class:`backends.openai.auth.BearerAuth`, which checks it and sets the header on the
request itself; an error of httpx or h11 that would quote a header is reported without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import httpx

from backends.context import Context
from backends.errors import LLMError
from backends.events import Notice, PlatformEvent
from backends.openai.auth import BearerAuth as BearerAuth  # re-exported: defined there
from backends.openai.auth import TokenProvider as TokenProvider
from backends.openai.auth import static_token as static_token
from backends.openai.chat import ChatCompletionsSchema, StreamAccumulator, build_request_body
from backends.openai.client_support import ModelInfo as ModelInfo  # re-exported: defined there
from backends.openai.client_support import RetryPolicy as RetryPolicy
from backends.openai.client_support import Stopped as _Stopped
from backends.openai.client_support import error_info as _error_info
from backends.openai.client_support import until_cancelled as _until_cancelled
from backends.openai.client_support import whole_reply as _whole_reply
from backends.openai.errors import ErrorMapper as ErrorMapper  # re-exported: defined there
from backends.openai.errors import retry_after as retry_after
from backends.openai.errors import service_cap as service_cap
from backends.openai.limits import (
    ACCEPT_ENCODING,
    IdleWatch,
    Limits,
    Undecodable,
    read_limited,
)
from backends.openai.sse import SSEReader
from backends.secrets import Secret
from backends.session import Session


class ChatCompletionsClient:
    """Talks to one OpenAI-compatible base URL through a shared ``httpx.AsyncClient``.

    The client does not own ``http`` (the platform does, one per platform). The bearer
    token goes only to URLs under ``base_url``; redirects are never followed.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        token: TokenProvider | None = None,
        errors: ErrorMapper | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
        token_name: str = "API key",
        limits: Limits | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token or static_token(None)
        self.errors = errors or ErrorMapper()
        self.retry = retry or RetryPolicy()
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        """httpx request extensions for every request (for example ``sni_hostname``)."""
        self.token_name = token_name
        """What the token is, in errors ("API key", "fog node token")."""
        self.limits = limits or Limits()
        """Idle timeout and size limits of every answer (see :class:`Limits`)."""

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _token(self, *, refresh: bool = False) -> Secret | None:
        return Secret.of(await self.token(refresh=refresh))

    def _auth(self, token: Secret | None) -> BearerAuth | None:
        if token is None:
            return None
        source = getattr(self.token, "source", None)
        return BearerAuth(
            token,
            what=self.token_name,
            source=source if isinstance(source, str) else f"the {self.token_name} setting",
        )

    async def _request(
        self, method: str, path: str, *, body: Any = None, stream: bool, token: Secret | None
    ) -> httpx.Response:
        url = self.url(path)
        if not url.startswith(self.base_url + "/"):  # pragma: no cover - defensive
            raise ValueError("refusing to send credentials outside the base URL")
        headers = dict(self.headers)
        headers["Accept-Encoding"] = ACCEPT_ENCODING  # what `decoded` undoes boundedly
        if stream:
            headers["Accept"] = "text/event-stream"
        try:
            request = self.http.build_request(
                method,
                url,
                json=body,
                headers=headers,
                extensions=self.extensions or None,
            )
        except (UnicodeError, ValueError, httpx.InvalidURL) as exc:
            raise self.errors.request_refused(exc) from None
        # Always streamed: every body is read through the limits (`read_limited`, SSE).
        return await self.http.send(
            request, stream=True, follow_redirects=False, auth=self._auth(token)
        )

    async def _checked(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        stream: bool,
        model: str | None,
        cancel: asyncio.Event | None = None,
    ) -> httpx.Response:
        """Send a request; a non-2xx response raises the mapped error.

        After a 401 the token provider is asked once for a fresh token.
        """
        refreshed = False
        token = await _until_cancelled(self._token(), cancel)
        while True:
            try:
                response = await _until_cancelled(
                    self._request(method, path, body=body, stream=stream, token=token),
                    cancel,
                )
            except httpx.LocalProtocolError as exc:
                # h11's message quotes the offending header, which may be the token.
                raise self.errors.request_refused(exc) from None
            except httpx.TransportError as exc:
                raise self.errors.transport_error(exc, partial=False) from exc
            if response.is_success:
                return response
            try:
                limit = self.limits.max_error_bytes
                raw, _ = await _until_cancelled(read_limited(response, limit), cancel)
            except (httpx.TransportError, Undecodable):
                raw = b""
            finally:
                await response.aclose()  # the rest of a long error body is discarded
            info = _error_info(raw, response.status_code)
            if response.status_code == 401 and not refreshed:
                fresh = await self._token(refresh=True)
                if fresh is not None and fresh != token:
                    token, refreshed = fresh, True
                    continue
            raise self.errors.http_error(
                response.status_code,
                info,
                response.headers,
                model=model,
                url=self.url(path),
                base_url=self.base_url,
            )

    async def _whole(self, response: httpx.Response, stop: asyncio.Event | None) -> bytes:
        """The whole body of a successful ``response``, up to the answer size limit."""
        limit = self.limits.max_body_bytes
        try:
            raw, more = await _until_cancelled(read_limited(response, limit), stop)
        except Undecodable as exc:
            raise self.errors.undecodable(str(exc), partial=False) from None
        except httpx.TransportError as exc:
            raise self.errors.transport_error(exc, partial=False) from exc
        if more:
            raise self.errors.too_large("an answer", limit, partial=False)
        return raw

    async def _get_json_once(self, path: str, model: str | None) -> Any:
        response = await self._checked("GET", path, stream=False, model=model)
        try:
            raw = await self._whole(response, None)
        finally:
            await response.aclose()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise self.errors.bad_chunk(raw.decode("utf-8", "replace")) from exc

    async def get_json(self, path: str, *, model: str | None = None) -> Any:
        """GET ``path`` (retrying what may succeed) and decode the JSON answer.

        Each attempt may take the idle timeout in all (its answer is its only content).
        """
        attempt = 1
        while True:
            try:
                idle = self.limits.idle_timeout
                try:
                    return await asyncio.wait_for(self._get_json_once(path, model), idle)
                except TimeoutError:
                    raise self.errors.idle_timeout(idle, partial=False) from None
            except LLMError as error:
                delay = self.retry.delay(attempt, error)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    async def list_models(self) -> list[ModelInfo]:
        """``GET /models``: the models this key can use, sorted by id."""
        data = await self.get_json("models")
        items = data.get("data") if isinstance(data, Mapping) else data
        models = [m for m in map(ModelInfo.parse, items or ()) if m is not None]
        return sorted(models, key=lambda m: m.id)

    async def retrieve_model(self, model: str) -> ModelInfo:
        """``GET /models/{model}``: raises the mapped model-access error when not offered."""
        from urllib.parse import quote

        data = await self.get_json(f"models/{quote(model, safe='')}", model=model)
        return ModelInfo.parse(data) or ModelInfo(id=model)

    async def stream_chat(
        self,
        body: Mapping[str, Any],
        *,
        cancel: asyncio.Event | None = None,
    ) -> AsyncIterator[PlatformEvent]:
        """POST ``/chat/completions`` with ``stream: true`` and yield events as they arrive.

        Failures before any output are retried per the :class:`RetryPolicy` (each retry
        announced by a :class:`Notice`); once text or a tool call arrived, a failure
        raises the mapped error at once. Setting ``cancel`` ends the stream quietly.
        """
        model = body.get("model")
        attempt = 1
        while True:
            accumulator = StreamAccumulator()
            try:
                async for event in self._stream_once(
                    body, accumulator, cancel, model if isinstance(model, str) else None
                ):
                    yield event
                return
            except _Stopped:
                return
            except LLMError as error:
                delay = None if accumulator.received_output else self.retry.delay(attempt, error)
                if delay is None:
                    raise
                attempt += 1
                wait = f"{delay * 1000:.0f} ms" if delay < 1 else f"{delay:.1f} s"
                yield Notice(
                    f"{error.description} Retrying in {wait} "
                    f"(attempt {attempt} of {self.retry.max_attempts})."
                )
            try:
                await _until_cancelled(asyncio.sleep(delay), cancel)
            except _Stopped:
                return

    async def _stream_once(
        self,
        body: Mapping[str, Any],
        accumulator: StreamAccumulator,
        cancel: asyncio.Event | None,
        model: str | None,
    ) -> AsyncIterator[PlatformEvent]:
        """One attempt, stopped by ``cancel`` (quietly) or by the idle timeout (an error)."""
        idle = self.limits.idle_timeout
        async with IdleWatch(idle, cancel) as watch:
            try:
                async for event in self._stream_watched(body, accumulator, watch, model):
                    yield event
            except _Stopped:
                if not watch.fired:
                    raise
            if watch.fired:
                raise self.errors.idle_timeout(idle, partial=accumulator.received_output)

    async def _stream_watched(
        self,
        body: Mapping[str, Any],
        accumulator: StreamAccumulator,
        watch: IdleWatch,
        model: str | None,
    ) -> AsyncIterator[PlatformEvent]:
        stop = watch.stop
        response = await self._checked(
            "POST", "chat/completions", body=body, stream=True, model=model, cancel=stop
        )
        try:
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                # A server that ignored `stream: true` answers with one JSON object.
                raw = await self._whole(response, stop)
                watch.finish()
                for event in _whole_reply(raw, accumulator, self.errors):
                    yield event
                return
            async for event in self._events(response, accumulator, watch):
                yield event
        finally:
            await response.aclose()

    async def _events(
        self, response: httpx.Response, accumulator: StreamAccumulator, watch: IdleWatch
    ) -> AsyncIterator[PlatformEvent]:
        """Yield the events of one SSE response, as they arrive.

        A reader task parses server-sent events (httpx-sse) into events as fast as the
        network delivers them; this generator hands out everything that arrived since it
        last ran, with adjacent text merged into one :class:`TextDelta`. A model that
        streams slowly gets each piece yielded on arrival; a burst (a fast server, or a
        consumer busy rendering) becomes one larger piece instead of hundreds of tiny ones,
        which keeps the per-token cost of every layer above this one out of the hot path.
        Cancelling (or the idle timeout: ``watch.stop``) ends the reader task wherever it
        waits; the caller tells the two apart.
        """
        reader = SSEReader(self.errors, response, accumulator, limits=self.limits, watch=watch)
        task = asyncio.ensure_future(reader.run())
        stop = watch.stop
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(lambda _: reader.ready.set())
        try:
            while True:
                await reader.ready.wait()
                reader.ready.clear()
                if stop.is_set():
                    return
                finished = reader.finished
                for event in reader.take():
                    yield event
                if finished:
                    break
        finally:
            watcher.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if reader.error is not None:
            raise reader.error
        for event in accumulator.finish():
            yield event


S = TypeVar("S", bound=ChatCompletionsSchema)


class ChatStreamSession(Session[S]):
    """A session that streams chat completions, cancellable at any moment.

    Subclasses implement :meth:`stream_reply`: one client for the whole session
    (:class:`ChatCompletionsSession`), or their own choice of server per request (the fog
    backend fails over between nodes).
    """

    _cancel_event: asyncio.Event | None = None

    @abstractmethod
    def stream_reply(self, context: Context, cancel: asyncio.Event) -> AsyncIterator[PlatformEvent]:
        """Stream the reply to ``context``; stop quietly once ``cancel`` is set."""

    def _new_cancel_event(self) -> asyncio.Event:
        """A fresh event for the next request, already set when :meth:`cancel` was called."""
        self._cancel_event = asyncio.Event()
        if self.cancelled:
            self._cancel_event.set()
        return self._cancel_event

    async def _unless_cancelled(self, step: Awaitable[Any]) -> None:
        """Await ``step`` (a request made while loading) unless :meth:`cancel` comes first.

        A cancel abandons the request; the generation that follows then stops before
        sending anything, quietly, as a cancel does at any other moment.
        """
        with contextlib.suppress(_Stopped):
            await _until_cancelled(step, self._new_cancel_event())

    async def _generate_once(self, context: Context) -> AsyncIterator[PlatformEvent]:
        async for event in self.stream_reply(context, self._new_cancel_event()):
            yield event

    def _on_cancel(self) -> None:
        if self._cancel_event is not None:
            self._cancel_event.set()


class ChatCompletionsSession(ChatStreamSession[S]):
    """A session that streams chat completions through one client; subclasses say which."""

    @abstractmethod
    def chat_client(self) -> ChatCompletionsClient:
        """The client for this session's requests (token and base URL included)."""

    def request_body(self, context: Context) -> dict[str, Any]:
        """The request body for ``context``; override to adapt it to a server."""
        return build_request_body(self.schema, context)

    def stream_reply(self, context: Context, cancel: asyncio.Event) -> AsyncIterator[PlatformEvent]:
        return self.chat_client().stream_chat(self.request_body(context), cancel=cancel)
