"""Fog nodes: OpenAI-compatible servers on the local network, found over mDNS.

Client side: :class:`FogPlatform` / :class:`FogSchema` (dispatch with failover),
:class:`FogBrowser` and :func:`discover` (live node list), token providers, TLS that
trusts the node's own root CA. Node side: :func:`create_node_certificates` (``fog
init``), :class:`FogAdvertiser` (mDNS) and :mod:`backends.fog.serve` (``fog serve``).

Importing this package loads nothing heavy; names resolve on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

_EXPORTS = {
    "FogAdvertiser": "advertise",
    "CommandToken": "auth",
    "EnvToken": "auth",
    "FileToken": "auth",
    "StaticToken": "auth",
    "TokenProvider": "auth",
    "NodeCertificates": "certs",
    "create_node_certificates": "certs",
    "FogConfig": "config",
    "FogBrowser": "discovery",
    "FogNode": "discovery",
    "NodeEvent": "discovery",
    "discover": "discovery",
    "FogCertificateError": "errors",
    "FogConnectivityError": "errors",
    "FogDiscoveryError": "errors",
    "FogError": "errors",
    "FogGenerationError": "errors",
    "FogInsecureNodeError": "errors",
    "FogInvalidTokenError": "auth",
    "FogModelNotFoundError": "errors",
    "FogNodeNotFoundError": "errors",
    "FogTokenError": "errors",
    "FogUnauthorizedError": "errors",
    "FogPlatform": "platform",
    "FogSchema": "platform",
    "FogSession": "platform",
}

__all__ = [
    "CommandToken",
    "EnvToken",
    "FileToken",
    "FogAdvertiser",
    "FogBrowser",
    "FogCertificateError",
    "FogConfig",
    "FogConnectivityError",
    "FogDiscoveryError",
    "FogError",
    "FogGenerationError",
    "FogInsecureNodeError",
    "FogInvalidTokenError",
    "FogModelNotFoundError",
    "FogNode",
    "FogNodeNotFoundError",
    "FogPlatform",
    "FogSchema",
    "FogSession",
    "FogTokenError",
    "FogUnauthorizedError",
    "NodeCertificates",
    "NodeEvent",
    "StaticToken",
    "TokenProvider",
    "create_node_certificates",
    "discover",
]

if TYPE_CHECKING:
    from backends.fog.advertise import FogAdvertiser
    from backends.fog.auth import (
        CommandToken,
        EnvToken,
        FileToken,
        FogInvalidTokenError,
        StaticToken,
        TokenProvider,
    )
    from backends.fog.certs import NodeCertificates, create_node_certificates
    from backends.fog.config import FogConfig
    from backends.fog.discovery import FogBrowser, FogNode, NodeEvent, discover
    from backends.fog.errors import (
        FogCertificateError,
        FogConnectivityError,
        FogDiscoveryError,
        FogError,
        FogGenerationError,
        FogInsecureNodeError,
        FogModelNotFoundError,
        FogNodeNotFoundError,
        FogTokenError,
        FogUnauthorizedError,
    )
    from backends.fog.platform import FogPlatform, FogSchema, FogSession


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
