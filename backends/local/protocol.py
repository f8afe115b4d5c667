"""What the app and its on-device engine process say to each other.

The engine (``python -m backends.local.engine``) reads one JSON object a line on its
standard input and writes one a line on its standard output. Requests carry an ``op``:

* ``load``: open a GGUF file (answered by ``loaded`` with what the engine found, or
  ``error``; after an error the engine exits);
* ``generate`` with an ``id``: stream ``text``, ``notice`` and ``tool_calls`` events, then
  exactly one ``done`` (with token counts) or ``error`` carrying the same ``id``;
* ``cancel`` with an ``id``: end that generation after the current token;
* ``quit``: exit. The end of standard input means the same, so an engine never outlives
  the process that started it.

Errors travel as :meth:`~backends.errors.LLMError.to_dict` and become the same typed
error again on the app's side.
"""

from __future__ import annotations

import json
from typing import Any

from backends.errors import ConfigurationError, LLMError
from backends.local import errors as local_errors


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line (compact JSON; non-ASCII text stays as UTF-8)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("a protocol line must hold a JSON object")
    return value


def _error_types() -> dict[str, type[LLMError]]:
    types: dict[str, type[LLMError]] = {"ConfigurationError": ConfigurationError}
    for value in vars(local_errors).values():
        if isinstance(value, type) and issubclass(value, LLMError):
            types[value.__name__] = value
    return types


def error_from_dict(data: dict[str, Any]) -> LLMError:
    """The typed error an engine reported (an unknown type becomes ``GenerationError``)."""
    kind = _error_types().get(str(data.get("type")), local_errors.GenerationError)
    return kind(
        str(data.get("description") or kind.description),
        reason=str(data.get("reason") or kind.reason),
        suggestion=str(data.get("suggestion") or kind.suggestion),
    )


__all__ = ["decode", "encode", "error_from_dict"]
