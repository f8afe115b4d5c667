"""Reading what went wrong on the wire, for error messages: addresses safe to show, waits
in words, a 404 from a path that is not the API, timeouts and certificate failures.
"""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit, urlunsplit

import httpx

from backends.errors import exception_chain
from backends.untrusted import one_line


def safe_url(url: str) -> str:
    """``url`` to show: without user name, password, query and fragment (which may hold
    credentials), on one line."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return one_line(url.split("@")[-1].split("?")[0])[:200]
    if not parts.scheme or not host:
        return one_line(url.split("@")[-1].split("?")[0])[:200]
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return one_line(urlunsplit((parts.scheme, netloc, parts.path, "", "")))[:300]


def wait_text(seconds: float) -> str:
    """A wait for people: "45 seconds", "20 minutes", "27 hours"."""
    if seconds < 120:
        count, unit = round(seconds), "second"
    elif seconds < 120 * 60:
        count, unit = round(seconds / 60), "minute"
    else:
        count, unit = round(seconds / 3600), "hour"
    return f"{count} {unit}" + ("" if count == 1 else "s")


# Messages of servers (OpenAI's own, web frameworks) about an address they do not have.
UNKNOWN_PATH = re.compile(
    r"\b(?:invalid|unknown|unrecognized|unsupported)\s+(?:request\s+)?"
    r"(?:url|path|route|endpoint)\b|\bno\s+route\b|\bpage\s+not\s+found\b",
    re.IGNORECASE,
)


def clipped(text: str, limit: int = 200) -> str:
    text = one_line(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_url(exc: httpx.TransportError) -> str:
    """The address of the failed request, safe to show ("" when unknown)."""
    try:
        return safe_url(str(exc.request.url))
    except RuntimeError:  # an exception made without its request
        return ""


def _timeout_seconds(exc: httpx.TransportError, which: str) -> float | None:
    try:
        timeouts = exc.request.extensions.get("timeout") or {}
    except RuntimeError:
        return None
    value = timeouts.get(which) if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def timeout_reason(exc: httpx.TimeoutException, where: str) -> str:
    """Why a request timed out, naming the phase (connect, read) and the limit."""
    kind = type(exc).__name__
    phase = {"ConnectTimeout": "connect", "WriteTimeout": "write", "PoolTimeout": "pool"}.get(
        kind, "read"
    )
    seconds = _timeout_seconds(exc, phase)
    limit = f" within {seconds:g} s" if seconds is not None else " within the timeout"
    if phase == "connect":
        return (
            f"No connection to {where} could be made{limit} ({kind}): the server may be "
            "down, or a firewall drops the connection."
        )
    if phase == "read":
        return f"{where} took the request but sent nothing back{limit} ({kind})."
    return f"The request to {where} could not be sent{limit} ({kind})."


def verify_failure(exc: BaseException) -> BaseException | None:
    """The certificate verification error behind ``exc``, if that is what failed."""
    for item in exception_chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError):
            return item
        if "CERTIFICATE_VERIFY_FAILED" in str(item):
            return item
    return None
