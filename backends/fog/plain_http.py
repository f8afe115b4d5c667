"""Who may receive the fog token over plain HTTP, and what the user is told about it.

A bearer token sent over plain HTTP can be read by anyone on the network path, and any
machine on the LAN can advertise itself over mDNS as a fog node. The rules:

- HTTPS nodes and plain-HTTP nodes on loopback get the token, silently (as before).
- A plain-HTTP URL on another host gets the token only when the user named that host:
  it is a manual node the user typed with ``http://`` (``[fog] manual_nodes``), or it
  matches an entry of the allow list (``--allow-http-node HOST[:PORT]``, ``[fog]
  allow_http_nodes``; the fog onboarding adds the node the user consents to).
- Discovered nodes are reached by the addresses their mDNS records give, so an allow
  entry matches the address (and port) a request actually goes to, never the host name
  a node advertises: an entry with a host name matches only URLs that use that name
  (manual nodes), since a node could claim any name.
- ``allow_http`` (``--insecure``) lets other plain-HTTP nodes be used, but *without*
  the token (nodes that need none, such as an open Ollama); a node that is neither
  allowed nor covered by ``allow_http`` is health-checked without the token and listed
  as refused, with the option that allows it (:func:`not_allowed_error`).
- Redirects are never followed (see :mod:`backends.fog.tls` and the node client), so
  an HTTPS node cannot pass the token on to a plain-HTTP URL.

Every host that may get the token in clear text is known from the configuration
alone, so :func:`token_warning` can warn before the first request is made.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import httpx

from backends.fog.errors import FogInsecureNodeError

ALLOW_SETTING = "allow_http_nodes"


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _normal_host(host: str) -> str:
    text = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return text


def parse_allow_entry(entry: str) -> tuple[str, int | None]:
    """``(host, port)`` of an allow-list entry: ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``,
    a bare IPv6 address or a URL. Raises ``ValueError`` for anything else."""
    text = entry.strip()
    if not text:
        raise ValueError("an allow_http_nodes entry is empty")
    if "://" in text:
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise ValueError(f"the allow_http_nodes entry {entry!r} is not a URL: {exc}") from exc
        if not url.host:
            raise ValueError(f"the allow_http_nodes entry {entry!r} names no host")
        return _normal_host(url.host), url.port or _default_port(url.scheme)
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"the allow_http_nodes entry {entry!r} is not HOST[:PORT]")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host or any(c.isspace() or c in "/@?#[]" for c in host):
        raise ValueError(f"the allow_http_nodes entry {entry!r} is not HOST[:PORT]")
    if not port_text:
        return _normal_host(host), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"the port in the allow_http_nodes entry {entry!r} is not 1-65535")
    return _normal_host(host), int(port_text)


def _target(url: str) -> tuple[str, str, int] | None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if not parsed.host:
        return None
    return parsed.scheme, _normal_host(parsed.host), parsed.port or _default_port(parsed.scheme)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine's loopback."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_plain_remote(url: str) -> bool:
    """Whether ``url`` is plain HTTP to another host (where a token could be read)."""
    target = _target(url)
    return target is not None and target[0] == "http" and not is_loopback_host(target[1])


def allowed_by_list(url: str, allow: Iterable[str]) -> bool:
    """Whether the host (and port) ``url`` goes to is on the allow list."""
    target = _target(url)
    if target is None:
        return False
    _scheme, host, port = target
    for entry in allow:
        try:
            allowed_host, allowed_port = parse_allow_entry(entry)
        except ValueError:
            continue
        if allowed_host == host and allowed_port in (None, port):
            return True
    return False


def is_manual(url: str, manual_nodes: Iterable[str]) -> bool:
    """Whether ``url`` is (the scheme, host and port of) a manual node the user typed."""
    target = _target(url)
    return target is not None and any(_target(node) == target for node in manual_nodes)


def token_allowed(url: str, *, allow: Iterable[str], manual_nodes: Iterable[str]) -> bool:
    """Whether the fog token may go to ``url``: HTTPS, loopback, or a named plain-HTTP host."""
    if not is_plain_remote(url):
        return _target(url) is not None
    return is_manual(url, manual_nodes) or allowed_by_list(url, allow)


def allow_entry(url: str) -> str:
    """The allow-list entry for ``url``: ``HOST:PORT`` (``[IPv6]:PORT``)."""
    target = _target(url)
    if target is None:
        return url
    _scheme, host, port = target
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def not_allowed_error(name: str, url: str, *, answered: bool | None = None) -> FogInsecureNodeError:
    """Why a discovered plain-HTTP node on another host is not used, and how to allow it."""
    entry = allow_entry(url)
    heard = ""
    if answered is True:
        heard = " It answered a health check sent without the token."
    elif answered is False:
        heard = " It did not answer a health check sent without the token."
    error = FogInsecureNodeError(
        "The fog node uses plain HTTP on the network and is not on your allow list.",
        reason=(
            f"{name} at {url} offers only unencrypted HTTP: the bearer token would cross the "
            "network readable by anyone on it, and any machine can advertise itself as a "
            f"fog node.{heard}"
        ),
        suggestion=(
            "Best, serve the node over TLS (`create_node_certificates`). If you trust this "
            f'node and the network, allow it: add "{entry}" to `FogConfig.{ALLOW_SETTING}`; '
            "`FogConfig.allow_http` uses it without the token."
        ),
    )
    error.allow_entry = entry
    return error


def token_targets(
    *, allow: Iterable[str], manual_nodes: Iterable[str]
) -> tuple[tuple[str, str], ...]:
    """Where the token may go over plain HTTP to another host: ``(where, why)`` pairs."""
    targets: list[tuple[str, str]] = []
    for node in manual_nodes:
        if is_plain_remote(node.strip()):
            targets.append((allow_entry(node.strip()), "a manual node"))
    for entry in allow:
        try:
            host, port = parse_allow_entry(entry)
        except ValueError:
            continue
        if is_loopback_host(host):
            continue
        where = host if port is None else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if all(where != known for known, _why in targets):
            targets.append((where, f"on {ALLOW_SETTING}"))
    return tuple(targets)


def token_warning(
    *, has_token: bool, allow: Iterable[str], manual_nodes: Iterable[str]
) -> str | None:
    """One line to show before the token may go over plain HTTP to another host, or
    ``None`` when it cannot (no token, or only HTTPS and loopback nodes are allowed)."""
    if not has_token:
        return None
    targets = token_targets(allow=allow, manual_nodes=manual_nodes)
    if not targets:
        return None
    where = ", ".join(f"{host} ({why})" for host, why in targets)
    return (
        f"Warning: the fog token is sent unencrypted over plain HTTP to {where}; anyone "
        "on the network can read it there. Serve the nodes over TLS (`spezichat fog "
        "init`) to keep it private."
    )
