"""Advertising a fog node over mDNS (node side of ``spezichat fog serve|advertise``).

The node is announced as ``_https._tcp`` (or ``_http._tcp`` without TLS) under an
instance name containing "SpeziLLMFog" so that clients recognise it, pointing at the host
name its certificate is issued for. Leaving the context (normal exit, an exception, or
Ctrl+C cancelling the task) unregisters the service and sends goodbye packets, so
clients drop the node at once instead of waiting for the records to expire.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from backends.errors import ConfigurationError, sentence
from backends.fog.config import DEFAULT_HOST
from backends.fog.errors import FogDiscoveryError
from backends.untrusted import one_line

DEFAULT_NAME = "SpeziLLMFog Service"


def local_addresses(interfaces: Sequence[str] = ()) -> list[str]:
    """Addresses to announce: the given interface addresses, else every non-loopback,
    non-link-local address of this machine (IPv4 and IPv6)."""
    if interfaces:
        return [a for a in interfaces if _is_ip(a)]
    import ifaddr

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            found.append(str(address))
    return sorted(set(found), key=lambda a: (":" in a, a))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class FogAdvertiser:
    """Registers one fog node service while the ``async with`` block runs."""

    def __init__(
        self,
        port: int,
        *,
        tls: bool = True,
        name: str = DEFAULT_NAME,
        host: str = DEFAULT_HOST,
        interfaces: Sequence[str] = (),
        addresses: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
    ) -> None:
        if not 0 < port < 65536:
            raise ConfigurationError(
                f"Port {port} cannot be advertised.",
                reason="A TCP port lies between 1 and 65535.",
                suggestion="Pass the port the server listens on (`FogAdvertiser.port`).",
            )
        if not name.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
            raise ConfigurationError(
                "The fog node name cannot be advertised.",
                reason="An mDNS instance name is visible text: it may not be empty or hold "
                "control characters (line breaks, tabs, escape codes).",
                suggestion=(
                    "Pass a plain name (`FogAdvertiser.name`), such as 'spezillmfog lab-gpu'."
                ),
            )
        self.port = port
        self.tls = tls
        self.name = name
        self.host = host.rstrip(".")
        self.interfaces = tuple(interfaces)
        self.addresses = tuple(addresses) or tuple(local_addresses(self.interfaces))
        self.properties = dict(properties or {})
        self.service_type = "_https._tcp.local." if tls else "_http._tcp.local."
        self._zeroconf: Any = None
        self._info: Any = None

    @property
    def registered_name(self) -> str:
        """The instance name in use (zeroconf may add a suffix to avoid a clash)."""
        if self._info is None:
            return self.name
        return str(self._info.name)[: -len(self.service_type) - 1]

    async def start(self) -> None:
        from zeroconf import (
            BadTypeInNameException,
            InterfaceChoice,
            IPVersion,
            NonUniqueNameException,
        )
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        if self._info is not None:
            return  # already registered
        if not self.addresses:
            raise FogDiscoveryError(
                "There is no network address to advertise the fog node on.",
                reason="This machine has no usable IPv4 or IPv6 address.",
                suggestion=(
                    "Connect to the network, or pass an address (`FogAdvertiser.interfaces`)."
                ),
            )
        packed = [socket.inet_pton(_family(a), a) for a in self.addresses]
        try:
            info = AsyncServiceInfo(
                self.service_type,
                f"{self.name}.{self.service_type}",
                addresses=packed,
                port=self.port,
                server=f"{self.host}.",
                properties={"path": "/v1", **self.properties},
            )
        except BadTypeInNameException as exc:
            raise ConfigurationError(
                "The fog node name cannot be advertised.",
                reason=f"mDNS refused the name or host name: {one_line(str(exc))}.",
                suggestion="Pass a shorter, plain name (`FogAdvertiser.name`, at most 63 "
                "bytes) and host name (`FogAdvertiser.host`).",
            ) from exc
        interfaces: Any = list(self.interfaces) or InterfaceChoice.All
        version = IPVersion.All if any(":" in a for a in self.addresses) else IPVersion.V4Only
        try:
            self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=version)
            await (await self._zeroconf.async_register_service(info, allow_name_change=True))
        except (OSError, NonUniqueNameException) as exc:
            await self._close()
            raise FogDiscoveryError(
                "The fog node could not be advertised over mDNS.",
                reason=sentence(
                    f"Registering {self.name} on {', '.join(self.addresses)} failed: {exc}"
                ),
                suggestion=(
                    "Check the network interface, or pick another name (`FogAdvertiser.name`)."
                ),
            ) from exc
        self._info = info

    async def stop(self) -> None:
        """Unregister (sending goodbye packets) and close."""
        info, self._info = self._info, None
        try:
            if info is not None and self._zeroconf is not None:
                # The network may be gone; closing still frees the sockets.
                with contextlib.suppress(Exception):
                    await (await self._zeroconf.async_unregister_service(info))
        finally:
            await self._close()

    async def _close(self) -> None:
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is not None:
            await zeroconf.async_close()

    async def __aenter__(self) -> FogAdvertiser:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
