"""Typed errors of the fog backend.

They follow the failure kinds of SpeziLLM's fog target (no node found, discovery failed,
unauthorized, model missing on the node, missing or wrong root CA, connectivity, a
failed generation), each with what happened, why, and what to do.
"""

from __future__ import annotations

import re

from backends.errors import LLMError

CA_HINT = (
    "Copy the root CA certificate from the node (ca/ca.crt in the folder its certificates "
    "were issued into) and set `FogConfig.ca_cert` to its path."
)


class FogError(LLMError):
    """Base class of fog node failures."""

    description = "The fog node failed for an unknown reason."
    reason = "Something unexpected went wrong while finding or talking to a fog node."
    suggestion = "Check that the node runs and that this machine reaches it, then retry."
    allow_entry: str = ""
    """For a plain-HTTP node that is not allowed: the HOST:PORT entry that allows it."""


class FogNodeNotFoundError(FogError):
    """No usable fog node was found (mDNS and manual nodes)."""

    description = "No fog node was found on the local network."
    reason = "No fog service answered the mDNS browse, and no manual node is configured."
    suggestion = "Start a fog node on this network, or list its URL in `FogConfig.manual_nodes`."


class FogDiscoveryError(FogError):
    """Browsing for fog services failed (for example no usable network interface)."""

    description = "Browsing the local network for fog nodes failed."
    reason = "mDNS could not be started on this machine's network interfaces."
    suggestion = (
        "Check the network connection, or list the node in `FogConfig.manual_nodes` to skip mDNS."
    )


class FogConnectivityError(FogError):
    """The node could not be reached or the connection broke."""

    description = "The fog node could not be reached."
    reason = "No network connection to the fog node could be established."
    suggestion = "Check that the node is running and reachable from this machine, then retry."


class FogUnauthorizedError(FogError):
    """The node rejected the bearer token (HTTP 401/403)."""

    description = "The fog node refused the request as unauthorized."
    reason = "The bearer token is missing, expired, or not accepted by the node."
    suggestion = (
        "Provide a valid token: set SPEZICHAT_FOG_TOKEN, or pass a token provider "
        "(StaticToken, FileToken, CommandToken) as `FogConfig.token`."
    )


class FogTokenError(FogUnauthorizedError):
    """The configured token source could not produce a token."""

    description = "No bearer token could be obtained for the fog node."


class FogModelNotFoundError(FogError):
    """The requested model is not available on the node."""

    description = "The model is not available on the fog node."
    reason = "The fog node does not have the requested model."
    suggestion = (
        "Download the model on the node (for Ollama: `ollama pull MODEL`), or pick one "
        "the node lists (`FogPlatform.list_models`)."
    )

    def __init__(self, model: str, node: str = "", *, detail: str = "") -> None:
        self.model = model
        where = f" {node}" if node else ""
        super().__init__(
            f"The model '{model}' is not available on the fog node{where}.",
            reason=detail or f"The node has no model named '{model}'.",
        )


class FogCertificateError(FogError):
    """The node's TLS certificate could not be verified, or the CA file is unusable."""

    description = "No secure connection to the fog node: its TLS certificate was not trusted."
    reason = "The root CA certificate that signed the node's certificate is not configured."
    suggestion = CA_HINT


class FogInsecureNodeError(FogError):
    """A node offers plain HTTP on the network and the user did not allow it."""

    description = "The fog node offers only plain HTTP, which is not allowed."
    reason = "Unencrypted connections to other machines are refused unless you opt in."
    suggestion = (
        "Serve the node over TLS (`create_node_certificates`). To send it the token anyway, "
        "allow that node (HOST:PORT) in `FogConfig.allow_http_nodes`; `FogConfig.allow_http` "
        "uses plain-HTTP nodes without the token."
    )


class FogGenerationError(FogError):
    """The node answered with an error while generating."""

    description = "The fog node failed while generating the reply."
    reason = "The node's OpenAI-compatible API answered with an error."
    suggestion = "Retry; if it keeps failing, check the node's log."


class FogIdleTimeoutError(FogError):
    """The connection to the node stayed open, but no new content came (keep-alive
    messages or a trickle of bytes only) for longer than the idle timeout."""

    description = "The fog node stopped sending the reply."
    reason = "Nothing new arrived within the idle timeout, though the connection stayed open."
    suggestion = (
        "Retry; if the model needs longer to start answering, raise `FogConfig.idle_timeout`."
    )


class FogResponseTooLargeError(FogGenerationError):
    """A line, event, answer or compressed body grew past what spezichat reads."""

    description = "The fog node sent more than spezichat accepts."


# Ollama: "model 'llama3:8b' not found, try pulling it first"; newer versions drop the
# second half or quote with double quotes.
_MODEL_NOT_FOUND = re.compile(
    r"""model\s+['"]?(?P<model>[^'"]+?)['"]?\s+not\s+found""", re.IGNORECASE
)


def model_not_found_in(message: str) -> str | None:
    """The model named in a "model '...' not found" message, else ``None``."""
    match = _MODEL_NOT_FOUND.search(message)
    return match.group("model") if match else None


def error_for_status(status: int, message: str, *, model: str, node: str) -> FogError:
    """Map an HTTP error answer of a node to a typed error."""
    detail = f"{node} answered HTTP {status}" + (f": {message}" if message else ".")
    if status in (401, 403):
        return FogUnauthorizedError(reason=f"{detail} The bearer token was not accepted.")
    missing = model_not_found_in(message)
    if missing is not None:
        return FogModelNotFoundError(missing, node, detail=detail)
    if status == 404 and "model" in message.lower():
        return FogModelNotFoundError(model, node, detail=detail)
    if status in (502, 503, 504):
        return FogConnectivityError(
            "The fog node is not available right now.",
            reason=detail,
            suggestion="The node or the server behind its proxy is down or busy; retry later.",
        )
    return FogGenerationError(reason=detail)
