"""Configuration shared by discovery, the node client and the fog platform."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backends.fog.auth import TokenProvider

DEFAULT_HOST = "spezillmfog.local"
"""Host name of the original SpeziLLM fog node; its certificate is issued for it."""
DEFAULT_SERVICE_NAMES: tuple[str, ...] = ("spezillmfog",)
"""Substrings that mark an mDNS service as a fog node (instance name or host)."""
SERVICE_TYPES: tuple[str, ...] = ("_https._tcp.local.", "_http._tcp.local.")

Strategy = Literal["random", "least-busy", "ordered"]


@dataclass(frozen=True, kw_only=True)
class FogConfig:
    """How to find fog nodes and how to talk to them."""

    ca_cert: Path | None = None
    """Root CA (PEM) that signed the nodes' certificates; ``None`` uses the system store."""
    expected_host: str = DEFAULT_HOST
    """Host name the node certificate must carry; sent as SNI and Host header."""
    token: TokenProvider | None = None
    """Where the bearer token comes from; ``None`` sends no Authorization header."""
    allow_http: bool = False
    """Use plain-HTTP nodes on the network, but without the token unless they are on
    :attr:`allow_http_nodes` or manual nodes (loopback nodes may always use HTTP)."""
    allow_http_nodes: tuple[str, ...] = ()
    """Plain-HTTP nodes on other hosts that may get the token: ``HOST``, ``HOST:PORT`` or
    ``[IPv6]:PORT``. Matched against the address a request goes to (discovered nodes are
    reached by address, so list their address); see :mod:`backends.fog.plain_http`."""
    discovery_timeout: float = 2.0
    """Seconds to browse mDNS before giving up on finding a node."""
    manual_nodes: tuple[str, ...] = ()
    """Node base URLs used without mDNS, such as ``https://10.0.0.5:443``."""
    service_names: tuple[str, ...] = DEFAULT_SERVICE_NAMES
    """Case-insensitive substrings of instance name or host that mark a fog service."""
    interfaces: tuple[str, ...] = ()
    """Interface addresses to browse on (for example ``127.0.0.1``); empty: all."""
    request_timeout: float = 60.0
    """Seconds to wait for a node to connect or to send the next piece."""
    idle_timeout: float = 120.0
    """Seconds a reply may go without new content; keep-alive messages and a trickle of
    bytes do not count (see :class:`backends.openai.limits.Limits`)."""
    health_timeout: float = 3.0
    """Seconds a health check (GET /v1/models) may take."""
    max_streams_per_node: int = 2
    """Replies that may stream from one node at the same time."""
    strategy: Strategy = "random"
    """How to pick a node: at random (as SpeziLLM does), the one with fewest streams in
    flight, or "ordered" (manual nodes as listed, then by name: a primary with backups)."""
    use_mdns: bool = True
    """Browse the network; ``False`` uses only the manual nodes."""

    def __post_init__(self) -> None:
        if self.max_streams_per_node < 1:
            raise ValueError(
                f"max_streams_per_node is {self.max_streams_per_node}; it must be at least 1."
            )
        if self.strategy not in ("random", "least-busy", "ordered"):
            raise ValueError(
                f"strategy is {self.strategy!r}; use 'random', 'least-busy' or 'ordered'."
            )
        if self.discovery_timeout <= 0 or self.request_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError(
                "discovery_timeout, timeout and idle_timeout must be positive numbers of seconds."
            )
        from backends.fog.plain_http import parse_allow_entry

        for entry in self.allow_http_nodes:
            parse_allow_entry(entry)  # raises ValueError naming the bad entry

    def may_send_token(self, url: str) -> bool:
        """Whether the token may go to ``url`` (HTTPS, loopback, or a plain-HTTP host the
        user named: a manual ``http://`` node or an :attr:`allow_http_nodes` entry)."""
        from backends.fog.plain_http import token_allowed

        return token_allowed(url, allow=self.allow_http_nodes, manual_nodes=self.manual_nodes)

    def plain_http_warning(self) -> str | None:
        """The warning to show before the token may go over plain HTTP to another host;
        ``None`` when it never can with this configuration."""
        from backends.fog.plain_http import token_warning

        return token_warning(
            has_token=self.token is not None,
            allow=self.allow_http_nodes,
            manual_nodes=self.manual_nodes,
        )

    def is_fog_service(self, instance: str, host: str) -> bool:
        """Whether an mDNS service looks like a fog node (a hint, never a trust decision)."""
        text = f"{instance}\n{host}".lower()
        return any(name.lower() in text for name in self.service_names if name)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP, possibly with a ``%scope``) is a loopback address."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address == "localhost"
