"""Secure connections to fog nodes.

Nodes are reached by IP address (mDNS gives addresses), but their certificates are
issued for a host name (``spezillmfog.local``). Every request therefore carries the
expected host as TLS server name (SNI, also used for host name verification) and as
``Host`` header (:func:`sni_for`), and the SSL context trusts the node's own root CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from backends.errors import exception_chain, sentence
from backends.fog.config import FogConfig, is_loopback
from backends.fog.errors import (
    CA_HINT,
    FogCertificateError,
    FogConnectivityError,
    FogError,
)


def ssl_context(ca_cert: Path | None) -> ssl.SSLContext:
    """An SSL context that trusts ``ca_cert`` (or the system store when ``None``)."""
    if ca_cert is None:
        return ssl.create_default_context()
    path = Path(ca_cert).expanduser()
    if not path.is_file():
        raise FogCertificateError(
            f"The root CA certificate file {path} does not exist.",
            reason="The fog configuration names a CA file that is not there.",
            suggestion=CA_HINT,
        )
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise FogCertificateError(
            f"The root CA certificate file {path} could not be loaded.",
            reason=f"It is not a readable PEM certificate ({exc}).",
            suggestion=CA_HINT,
        ) from exc


def check_url_allowed(url: str, config: FogConfig) -> None:
    """Refuse plain HTTP to a non-loopback node unless the user opted in.

    Opting in is ``allow_http`` (``--insecure``: used, but without the token unless
    :meth:`FogConfig.may_send_token`), or naming the node: a manual ``http://`` node
    or an ``allow_http_nodes`` entry (see :mod:`backends.fog.plain_http`).
    """
    parsed = httpx.URL(url)
    if parsed.scheme == "https" or is_loopback(parsed.host):
        return
    if parsed.scheme != "http":
        raise FogConnectivityError(
            f"The fog node URL {url} is not an http(s) URL.",
            reason=f"Its scheme '{parsed.scheme}' is not supported.",
            suggestion="Use a URL such as https://10.0.0.5:443.",
        )
    if config.allow_http or config.may_send_token(url):
        return
    from backends.fog.plain_http import not_allowed_error

    raise not_allowed_error("The node", url)


def make_http_client(config: FogConfig) -> httpx.AsyncClient:
    """The httpx client a platform shares between its nodes: TLS trusting the node CA.

    It carries no credentials and ignores proxy and certificate settings of the
    environment; the bearer token is added per request by the node client. Redirects
    are never followed (here and per request), so an HTTPS node cannot send the token
    on to another URL, plain HTTP included: a 3xx is reported as an error instead.
    """
    timeout = httpx.Timeout(config.request_timeout, connect=min(config.request_timeout, 10.0))
    return httpx.AsyncClient(
        verify=ssl_context(config.ca_cert),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": "spezichat-fog"},
    )


def sni_for(url: str, config: FogConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and request extensions that make an HTTPS request by IP verify the host.

    The TLS server name (SNI, also used to check the certificate) and the ``Host``
    header become the expected host; plain HTTP keeps the defaults.
    """
    if httpx.URL(url).scheme != "https" or not config.expected_host:
        return {}, {}
    return {"Host": config.expected_host}, {"sni_hostname": config.expected_host}


def connection_error(exc: BaseException, url: str, config: FogConfig) -> FogError:
    """Map a failed connection to ``url`` to a typed error (certificate or connectivity)."""
    for item in exception_chain(exc):
        if isinstance(item, FogError):
            return item
        if isinstance(item, ssl.SSLCertVerificationError) or (
            isinstance(item, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(item)
        ):
            return certificate_error(item, url, config)
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return certificate_error(exc, url, config)
    if isinstance(exc, httpx.TimeoutException):
        return FogConnectivityError(
            "The fog node did not answer in time.",
            reason=f"{url}: {type(exc).__name__} after {config.request_timeout:g} s.",
            suggestion="Check that the node is running and not overloaded, then retry.",
        )
    return FogConnectivityError(reason=sentence(f"Connecting to {url} failed: {text}"))


def _validity(detail: str) -> str:
    if "not yet valid" in detail.lower():
        return "is not valid yet"
    return "has expired"


def certificate_error(exc: BaseException, url: str, config: FogConfig) -> FogCertificateError:
    detail = (getattr(exc, "verify_message", "") or str(exc)).rstrip(".")
    if config.ca_cert is None:
        why = (
            f"The TLS certificate of {url} (for {config.expected_host}) could not be "
            f"verified: {detail}. No root CA certificate is configured, so only the "
            "system's authorities are trusted."
        )
    else:
        why = (
            f"The TLS certificate of {url} could not be verified against the root CA "
            f"certificate {config.ca_cert} and host name {config.expected_host}: {detail}."
        )
    if "expired" in detail.lower() or "not yet valid" in detail.lower():
        return FogCertificateError(
            "No secure connection to the fog node: its TLS certificate is out of date.",
            reason=f"{why} The node's certificate {_validity(detail)}, going by this "
            "computer's clock.",
            suggestion=(
                "Check this computer's date and time first. If they are right, renew the "
                "node's certificates on the node "
                "(`create_node_certificates(overwrite=True)`, same folder and host name as "
                "before), restart the node, and copy the new root CA certificate "
                "(ca/ca.crt) to every client."
            ),
        )
    if "mismatch" in detail.lower() or "hostname" in detail.lower():
        suggestion = (
            f"The node's certificate is not issued for {config.expected_host}. Set "
            "`FogConfig.expected_host` to the host name the certificate was issued for, or "
            "issue a certificate for this one."
        )
    else:
        suggestion = CA_HINT
    return FogCertificateError(
        "No secure connection to the fog node: its TLS certificate was not trusted.",
        reason=why,
        suggestion=suggestion,
    )
