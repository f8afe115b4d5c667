"""Finding fog nodes: mDNS browsing (zeroconf's async API), manual nodes, health checks.

:class:`FogBrowser` browses ``_https._tcp`` and ``_http._tcp``, keeps the services that
look like fog nodes (instance name or host containing one of the configured names,
``spezillmfog`` by default), resolves their IPv4 and IPv6 addresses and SRV port, and
health-checks each with ``GET /v1/models``. The list stays live: listeners hear about
every node added, updated (resolved again, checked) or removed (goodbye packet or expiry).
TXT values are kept as hints for display only; addresses, port and scheme come from the
A/AAAA and SRV records and the service type, and trust comes from TLS alone.

A plain-HTTP node on another host that the user did not allow (:mod:`backends.fog.plain_http`)
is listed as ``refused`` with the option that allows it; its health check carries no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

from backends.errors import sentence
from backends.fog.client import probe
from backends.fog.config import SERVICE_TYPES, FogConfig, is_loopback
from backends.fog.errors import (
    FogConnectivityError,
    FogDiscoveryError,
    FogError,
)
from backends.fog.plain_http import not_allowed_error
from backends.fog.tls import make_http_client
from backends.untrusted import one_line

log = logging.getLogger(__name__)

NodeStatus = Literal["checking", "ok", "error", "refused"]
NodeEventKind = Literal["added", "updated", "removed"]
RESOLVE_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class FogNode:
    """One fog node: where it is and, once checked, whether it answers and what it serves."""

    key: str
    """Unique id: the full mDNS service name, or the URL of a manual node."""
    name: str
    """Instance name ("SpeziLLMFog Service") or the URL of a manual node."""
    host: str
    """Host the node advertises (SRV target) or the URL's host; shown, not trusted."""
    addresses: tuple[str, ...]
    """IP addresses (IPv4 first) or, for manual nodes, the URL's host."""
    port: int
    tls: bool
    source: Literal["mdns", "manual"] = "mdns"
    txt: tuple[tuple[str, str], ...] = ()
    """TXT record values: hints for display only."""
    status: NodeStatus = "checking"
    url: str | None = None
    """The URL that answered the health check."""
    models: tuple[str, ...] = ()
    latency_ms: float | None = None
    error: FogError | None = field(default=None, compare=False)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def loopback(self) -> bool:
        return bool(self.addresses) and all(is_loopback(a) for a in self.addresses)

    def urls(self) -> tuple[str, ...]:
        """Base URLs to try, one per address, the checked one first."""
        urls = [_url(self.scheme, address, self.port) for address in self.addresses]
        if self.url in urls:
            urls.remove(self.url)
            urls.insert(0, self.url)
        return tuple(urls)

    def serves(self, model: str) -> bool | None:
        """Whether the node lists ``model`` (Ollama's ``:latest`` tag is implied); ``None``
        when the node has not been checked."""
        if not self.models:
            return None
        return model in self.models or f"{model}:latest" in self.models

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "addresses": list(self.addresses),
            "port": self.port,
            "tls": self.tls,
            "source": self.source,
            "status": self.status,
            "url": self.url,
            "models": list(self.models),
            "latency_ms": self.latency_ms,
            "error": self.error.to_dict() if self.error else None,
            "txt": dict(self.txt),
        }


@dataclass(frozen=True)
class NodeEvent:
    kind: NodeEventKind
    node: FogNode


def _url(scheme: str, address: str, port: int) -> str:
    try:
        literal = ipaddress.ip_address(address)
    except ValueError:
        return f"{scheme}://{address}:{port}"
    if literal.version == 6:
        return f"{scheme}://[{address}]:{port}"
    return f"{scheme}://{address}:{port}"


def manual_node(url: str) -> FogNode:
    """A node from a configured URL such as ``https://10.0.0.5:443`` (path ignored)."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise FogConnectivityError(
            f"The manual fog node '{url}' is not a valid URL.",
            reason=str(exc),
            suggestion="Write manual nodes as URLs such as https://10.0.0.5:443.",
        ) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FogConnectivityError(
            f"The manual fog node '{url}' is not an http(s) URL.",
            reason="A node URL needs the scheme (https or http) and a host.",
            suggestion="Write manual nodes as URLs such as https://10.0.0.5:443.",
        )
    tls = parsed.scheme == "https"
    port = parsed.port or (443 if tls else 80)
    return FogNode(
        key=f"{parsed.scheme}://{parsed.host}:{port}",
        name=_url(parsed.scheme, parsed.host, port),
        host=parsed.host,
        addresses=(parsed.host,),
        port=port,
        tls=tls,
        source="manual",
    )


def _addresses(info: Any) -> tuple[str, ...]:
    result: list[str] = []
    for text in info.parsed_addresses():
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 6 and address.is_link_local:
            continue  # needs an interface scope that URLs cannot carry portably
        result.append(text)
    return tuple(sorted(set(result), key=lambda a: (":" in a, a)))


def _txt(info: Any) -> tuple[tuple[str, str], ...]:
    pairs = []
    for key, value in (info.decoded_properties or {}).items():
        if key:
            pairs.append((str(key)[:64], "" if value is None else str(value)[:200]))
    return tuple(sorted(pairs))


def _instance(name: str, service_type: str) -> str:
    suffix = "." + service_type
    return name[: -len(suffix)] if name.endswith(suffix) else name


class FogBrowser:
    """A live list of fog nodes from mDNS and the configured manual nodes.

    Use as ``async with FogBrowser(config) as browser:``; ``browser.nodes`` is the
    current list, :meth:`wait_for` waits until it satisfies a condition, and
    :meth:`subscribe` registers a callback for every :class:`NodeEvent`.
    """

    def __init__(
        self,
        config: FogConfig,
        *,
        http: httpx.AsyncClient | None = None,
        health_check: bool = True,
    ) -> None:
        self.config = config
        self.health_check = health_check
        self._http = http
        self._own_http = http is None
        self._nodes: dict[str, FogNode] = {}
        self._listeners: list[Callable[[NodeEvent], None]] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._zeroconf: Any = None
        self._browser: Any = None
        self._started = False

    # Lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        for url in self.config.manual_nodes:
            self._put(manual_node(url), "added")
        if self.config.use_mdns:
            await self._start_mdns()

    async def _start_mdns(self) -> None:
        from zeroconf import DNSQuestionType, InterfaceChoice
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        interfaces: Any = list(self.config.interfaces) or InterfaceChoice.All
        try:
            self._zeroconf = AsyncZeroconf(interfaces=interfaces)
            # Ask for multicast answers from the first query on: a unicast answer (QU) to
            # port 5353 reaches only one of the processes sharing that port on this
            # machine, so a node on the same host would be found a second later.
            self._browser = AsyncServiceBrowser(
                self._zeroconf.zeroconf,
                list(SERVICE_TYPES),
                handlers=[self._on_change],
                question_type=DNSQuestionType.QM,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            await self._close_mdns()
            where = ", ".join(self.config.interfaces) or "all interfaces"
            raise FogDiscoveryError(
                reason=sentence(f"mDNS could not start on {where}: {exc}"),
            ) from exc

    async def _close_mdns(self) -> None:
        browser, self._browser = self._browser, None
        zeroconf, self._zeroconf = self._zeroconf, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.async_cancel()
        if zeroconf is not None:
            with contextlib.suppress(Exception):
                await zeroconf.async_close()

    async def aclose(self) -> None:
        await self._close_mdns()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> FogBrowser:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # The list --------------------------------------------------------------------------
    @property
    def nodes(self) -> list[FogNode]:
        return sorted(self._nodes.values(), key=lambda n: (n.source != "mdns", n.name, n.key))

    def get(self, key: str) -> FogNode | None:
        return self._nodes.get(key)

    @property
    def pending(self) -> bool:
        """Whether resolutions or health checks are still running."""
        return any(not task.done() for task in self._tasks.values())

    def subscribe(self, listener: Callable[[NodeEvent], None]) -> Callable[[], None]:
        """Call ``listener`` for every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_for(self, condition: Callable[[list[FogNode]], bool], timeout: float) -> bool:
        """Wait until ``condition(nodes)`` holds (``True``) or ``timeout`` passes (``False``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition(self.nodes):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for running resolutions and health checks."""
        await self.wait_for(lambda _nodes: not self.pending, timeout)

    def recheck(self, key: str, error: FogError | None = None) -> None:
        """Mark a node as failing (when ``error`` is given) and health-check it again."""
        node = self._nodes.get(key)
        if node is None:
            return
        if error is not None:
            node = dataclasses.replace(node, status="error", error=error)
        self._put(node, "updated")

    # Internals ---------------------------------------------------------------------------
    def _emit(self, event: NodeEvent) -> None:
        self._changed.set()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop discovery
                log.exception("fog node listener failed")

    def needs_consent(self, node: FogNode) -> bool:
        """Whether ``node`` is plain HTTP on another host and the user named none of its
        URLs (allow list, manual node) nor allowed plain HTTP (``allow_http``)."""
        if node.tls or node.loopback or self.config.allow_http:
            return False
        return not any(self.config.may_send_token(url) for url in node.urls())

    def _put(self, node: FogNode, kind: NodeEventKind, *, check: bool = True) -> None:
        if self.needs_consent(node):
            # Listed with what to do; checked (if at all) without the token.
            node = dataclasses.replace(
                node,
                status="refused",
                error=not_allowed_error(one_line(node.name), node.urls()[0]),
            )
            if self.health_check and check:
                self._spawn(f"check:{node.key}", self._check_without_token(node))
        elif not self.health_check:
            node = dataclasses.replace(node, status="ok")
        elif check:
            self._spawn(f"check:{node.key}", self._check(node))
        self._nodes[node.key] = node
        self._emit(NodeEvent(kind, node))

    def _spawn(self, key: str, work: Any) -> None:
        previous = self._tasks.get(key)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.ensure_future(work)
        self._tasks[key] = task
        task.add_done_callback(lambda _t: self._changed.set())

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = make_http_client(self.config)
        return self._http

    async def _check(self, node: FogNode) -> None:
        try:
            http = self._client()
        except FogError as error:
            result = dataclasses.replace(node, status="error", error=error)
        else:
            found = await probe(http, node.urls(), self.config)
            result = dataclasses.replace(
                node,
                status="ok" if found.url else "error",
                url=found.url,
                models=found.models or node.models,
                latency_ms=found.latency_ms,
                error=found.error,
            )
        if self._nodes.get(node.key) is not None:
            self._nodes[node.key] = result
            self._emit(NodeEvent("updated", result))

    async def _check_without_token(self, node: FogNode) -> None:
        """Health-check a node that may not get the token: the request carries none, and
        the node stays refused whatever it answers (its models are shown as hints)."""
        tokenless = dataclasses.replace(self.config, token=None, allow_http=True)
        try:
            found = await probe(self._client(), node.urls(), tokenless)
        except FogError:
            return
        answered = found.url is not None
        result = dataclasses.replace(
            node,
            models=found.models or node.models,
            latency_ms=found.latency_ms,
            error=not_allowed_error(
                one_line(node.name), found.url or node.urls()[0], answered=answered
            ),
        )
        if self._nodes.get(node.key) is not None:
            self._nodes[node.key] = result
            self._emit(NodeEvent("updated", result))

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            for key in (f"resolve:{name}", f"check:{name}"):
                task = self._tasks.pop(key, None)
                if task is not None:
                    task.cancel()
            node = self._nodes.pop(name, None)
            if node is not None:
                self._emit(NodeEvent("removed", node))
            return
        self._spawn(f"resolve:{name}", self._resolve(service_type, name))

    async def _resolve(self, service_type: str, name: str) -> None:
        from zeroconf import DNSQuestionType
        from zeroconf.asyncio import AsyncServiceInfo

        if self._zeroconf is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(
            self._zeroconf.zeroconf, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM
        ):
            log.debug("could not resolve %s", name)
            return
        instance = _instance(name, service_type)
        host = (info.server or "").rstrip(".")
        addresses = _addresses(info)
        if not self.config.is_fog_service(instance, host) or not addresses or not info.port:
            return
        node = FogNode(
            key=name,
            name=instance,
            host=host,
            addresses=addresses,
            port=int(info.port),
            tls=service_type.startswith("_https."),
            txt=_txt(info),
        )
        known = self._nodes.get(name)
        if known is not None and (known.addresses, known.port) == (node.addresses, node.port):
            if known.txt != node.txt:
                self._nodes[name] = dataclasses.replace(known, txt=node.txt)
                self._emit(NodeEvent("updated", self._nodes[name]))
            return
        # New, or moved to another address or port: check it (again).
        self._put(node, "added" if known is None else "updated")


async def discover(config: FogConfig, *, timeout: float | None = None) -> list[FogNode]:
    """Browse for ``timeout`` seconds (default: the configured wait) and return the nodes,
    health-checked."""
    wait = config.discovery_timeout if timeout is None else timeout
    async with FogBrowser(config) as browser:
        await asyncio.sleep(max(0.0, wait))
        await browser.settle(config.health_timeout)
        return browser.nodes
