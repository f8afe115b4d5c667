"""The fog platform: dispatch chat requests to fog nodes, with failover.

The platform keeps one live :class:`~backends.fog.discovery.FogBrowser` (started with the
first session) and one httpx client trusting the node CA. For each request a session
picks a node (at random as SpeziLLM does, or the one with fewest streams in flight),
holds one of that node's stream slots, and streams through the OpenAI-compatible core.
When a node fails before the first token the next node is tried; once text arrived, a
failure ends the reply (the text so far is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from backends.context import Context
from backends.errors import LLMError
from backends.events import Event, Notice, PlatformEvent, TextDelta, ToolCallsDone
from backends.fog.auth import TokenProvider
from backends.fog.client import node_client
from backends.fog.config import FogConfig
from backends.fog.discovery import FogBrowser, FogNode, manual_node
from backends.fog.errors import (
    FogCertificateError,
    FogConnectivityError,
    FogError,
    FogGenerationError,
    FogInsecureNodeError,
    FogModelNotFoundError,
    FogNodeNotFoundError,
    FogTokenError,
    FogUnauthorizedError,
)
from backends.fog.tls import make_http_client
from backends.openai.chat import ChatCompletionsSchema, build_request_body
from backends.openai.client import ChatStreamSession
from backends.session import Platform
from backends.state import LLMState

# Which error to report when every node failed: the most actionable first.
_PRIORITY: tuple[type[FogError], ...] = (
    FogTokenError,
    FogUnauthorizedError,
    FogCertificateError,
    FogModelNotFoundError,
    FogInsecureNodeError,
    FogGenerationError,
    FogConnectivityError,
)


def most_relevant(errors: Sequence[LLMError]) -> LLMError | None:
    """The error to show when every node failed."""
    for kind in _PRIORITY:
        for error in errors:
            if isinstance(error, kind):
                return error
    return errors[0] if errors else None


@dataclass(frozen=True, kw_only=True)
class FogSchema(ChatCompletionsSchema):
    """A model served by fog nodes. An empty ``model`` uses the first model the node lists."""

    model: str = ""
    token: TokenProvider | None = field(default=None, compare=False, repr=False)
    """This session's own bearer token, in place of the platform's ``FogConfig.token``
    (as SpeziLLM's fog schema carries its token closure): two users' sessions can share
    one platform, its discovery and its node slots. ``None`` uses the platform's token.
    Node health checks keep using the platform's token."""


class FogPlatform(Platform[FogSchema]):
    """Runs :class:`FogSchema` sessions on the fog nodes of the local network."""

    name = "fog"
    schema_type = FogSchema

    def __init__(self, config: FogConfig | None = None, *, max_concurrent_streams: int = 64):
        super().__init__(max_concurrent_streams=max_concurrent_streams)
        self.config = config or FogConfig()
        self._http: httpx.AsyncClient | None = None
        self._browser: FogBrowser | None = None
        self._start_lock = asyncio.Lock()
        self._in_flight: dict[str, int] = {}
        self._slots_changed = asyncio.Condition()
        self._manual_order: dict[str, int] | None = None
        self.served: dict[str, int] = {}
        """How many requests each node (by key) has started; for diagnostics."""
        self._warned = False

    def session(self, schema: FogSchema, context: Context | None = None) -> FogSession:
        return FogSession(self, schema, context)

    def take_warning(self) -> str | None:
        """The plain-HTTP token warning (:meth:`FogConfig.plain_http_warning`), once per
        platform: the first session shows it as a :class:`Notice` before any request."""
        if self._warned:
            return None
        self._warned = True
        return self.config.plain_http_warning()

    # Nodes -----------------------------------------------------------------------------
    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = make_http_client(self.config)
        return self._http

    async def browser(self) -> FogBrowser:
        """The live node list, started on first use."""
        async with self._start_lock:
            if self._browser is None:
                browser = FogBrowser(self.config, http=self.http)
                await browser.start()
                self._browser = browser
            return self._browser

    async def nodes(self, *, wait: bool = True) -> list[FogNode]:
        """The known nodes; with ``wait``, waits up to the discovery timeout for one that
        answered its health check."""
        browser = await self.browser()
        if wait:
            # Without mDNS nothing new can appear: stop once every manual node was checked.
            settled = not self.config.use_mdns
            await browser.wait_for(
                lambda nodes: (
                    any(n.status == "ok" for n in nodes) or (settled and not browser.pending)
                ),
                self.config.discovery_timeout,
            )
        return browser.nodes

    async def ensure_node(self) -> None:
        """Raise the most helpful error when no usable node can be found."""
        nodes = await self.nodes()
        if any(n.status == "ok" for n in nodes):
            return
        browser = await self.browser()
        await browser.settle(self.config.health_timeout)
        nodes = browser.nodes
        if any(n.status == "ok" for n in nodes):
            return
        raise self.no_node_error(nodes)

    async def list_models(self) -> list[str]:
        """The model ids the usable nodes list (waiting for discovery as a session does)."""
        await self.ensure_node()
        browser = await self.browser()
        await browser.settle(self.config.health_timeout)
        return sorted({m for n in browser.nodes if n.status == "ok" for m in n.models})

    def no_node_error(self, nodes: Sequence[FogNode]) -> LLMError:
        error = most_relevant([n.error for n in nodes if n.error is not None])
        if error is not None:
            return error
        where = ", ".join(self.config.interfaces) or "all network interfaces"
        mdns = (
            f"No fog service answered the mDNS browse on {where} within "
            f"{self.config.discovery_timeout:g} s"
            if self.config.use_mdns
            else "mDNS browsing is off"
        )
        manual = (
            "and no manual node is configured."
            if not self.config.manual_nodes
            else "and no manual node answered."
        )
        return FogNodeNotFoundError(reason=f"{mdns}, {manual}")

    def candidates(self, model: str, exclude: set[str]) -> list[FogNode]:
        """Nodes to try for ``model``, best first, leaving out ``exclude`` (node keys)."""
        browser = self._browser
        if browser is None:
            return []
        usable = [n for n in browser.nodes if n.key not in exclude and n.status != "refused"]
        groups: list[list[FogNode]] = [[], [], [], []]
        # "ordered" keeps the configured order even while a check is still running.
        hopeful = ("ok", "checking") if self.config.strategy == "ordered" else ("ok",)
        for node in usable:
            if node.status == "ok" and model and node.serves(model) is False:
                groups[3].append(node)  # answers, but lists other models: last resort
            elif node.status == "ok" and (not model or node.serves(model)):
                groups[0].append(node)
            elif node.status in hopeful:
                groups[0 if self.config.strategy == "ordered" else 1].append(node)
            else:
                groups[2].append(node)  # failing or unchecked: maybe back by now
        ordered: list[FogNode] = []
        for group in groups:
            if self.config.strategy == "ordered":
                group.sort(key=self._configured_position)
            else:
                random.shuffle(group)
            if self.config.strategy == "least-busy":
                group.sort(key=lambda n: self._in_flight.get(n.key, 0))
            ordered.extend(group)
        return ordered

    def _configured_position(self, node: FogNode) -> tuple[int, str]:
        if self._manual_order is None:
            self._manual_order = {
                manual_node(url).key: index for index, url in enumerate(self.config.manual_nodes)
            }
        return (self._manual_order.get(node.key, len(self._manual_order)), node.name)

    @contextlib.asynccontextmanager
    async def node_slot(self, candidates: Sequence[FogNode]) -> AsyncIterator[FogNode]:
        """Hold a stream slot on the first of ``candidates`` with one free (waiting when all
        are busy) and yield that node."""
        limit = self.config.max_streams_per_node
        async with self._slots_changed:
            while True:
                free = [n for n in candidates if self._in_flight.get(n.key, 0) < limit]
                if free:
                    node = free[0]
                    break
                await self._slots_changed.wait()
            self._in_flight[node.key] = self._in_flight.get(node.key, 0) + 1
        self.served[node.key] = self.served.get(node.key, 0) + 1
        try:
            yield node
        finally:
            async with self._slots_changed:
                self._in_flight[node.key] -= 1
                self._slots_changed.notify_all()

    def in_flight(self, key: str) -> int:
        """Streams running on the node ``key`` right now."""
        return self._in_flight.get(key, 0)

    def report_failure(self, node: FogNode, error: LLMError) -> None:
        """A node failed before answering: mark it failing and check it again."""
        if self._browser is not None and isinstance(
            error, (FogConnectivityError, FogCertificateError)
        ):
            self._browser.recheck(node.key, error if isinstance(error, FogError) else None)

    async def aclose(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            await browser.aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class FogSession(ChatStreamSession[FogSchema]):
    """A conversation with a model on the fog nodes."""

    platform: FogPlatform

    async def stream(self) -> AsyncGenerator[Event, None]:
        """The session's events, led (once per platform) by a :class:`Notice` warning that
        the token goes over plain HTTP to another host, before the first request is sent."""
        if self.state not in (LLMState.GENERATING, LLMState.LOADING):
            warning = self.platform.take_warning()
            if warning is not None:
                yield Notice(warning)
        events = super().stream()
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    async def _setup(self) -> None:
        # Finding a node may take the whole discovery wait: a cancel ends it at once (the
        # generation that follows then stops quietly), as for OpenAI's model check.
        await self._unless_cancelled(self.platform.ensure_node())

    @property
    def config(self) -> FogConfig:
        """The platform's configuration, with this session's token when its schema has one."""
        if self.schema.token is None:
            return self.platform.config
        return dataclasses.replace(self.platform.config, token=self.schema.token)

    def request_body_for(self, context: Context, node: FogNode) -> dict[str, Any]:
        body = build_request_body(self.schema, context)
        if not self.schema.model and node.models:
            body["model"] = node.models[0]
        if "max_completion_tokens" in body:
            # Ollama and llama.cpp servers know only the older name.
            body.setdefault("max_tokens", body["max_completion_tokens"])
        return body

    async def stream_reply(
        self, context: Context, cancel: asyncio.Event
    ) -> AsyncIterator[PlatformEvent]:
        """Stream from the best node; one that fails before answering hands over to the next."""
        if self.cancelled:
            return  # stopped while a node was being found: nothing is sent
        platform = self.platform
        tried: set[str] = set()
        errors: list[LLMError] = []
        while True:
            candidates = platform.candidates(self.schema.model, tried)
            if not candidates:
                if not tried:
                    # The list emptied: wait for a node again (a cancel ends the wait).
                    await self._unless_cancelled(platform.ensure_node())
                    if self.cancelled:
                        return
                    candidates = platform.candidates(self.schema.model, tried)
                if not candidates:
                    break
            async with platform.node_slot(candidates) as node:
                tried.add(node.key)
                output = False
                try:
                    async for event in self._stream_from(node, context, cancel):
                        if isinstance(event, (TextDelta, ToolCallsDone)):
                            output = True
                        yield event
                    return
                except LLMError as error:
                    if output or isinstance(error, FogTokenError):
                        raise
                    errors.append(error)
                    platform.report_failure(node, error)
            if platform.candidates(self.schema.model, tried):
                yield Notice(
                    f"Fog node {node.name} failed before answering ({errors[-1].description}); "
                    "trying another node."
                )
        raise most_relevant(errors) or platform.no_node_error([])

    async def _stream_from(
        self, node: FogNode, context: Context, cancel: asyncio.Event
    ) -> AsyncIterator[PlatformEvent]:
        """Stream from one node, trying its other addresses when one cannot be reached."""
        body = self.request_body_for(context, node)
        last: LLMError | None = None
        for url in node.urls():
            client = node_client(self.platform.http, url, self.config)
            try:
                async for event in client.stream_chat(body, cancel=cancel):
                    yield event
                return
            except FogConnectivityError as error:
                last = error
                continue
        if last is not None:
            raise last
