"""Recognise function calls in the text a local model writes.

Chat templates that support tools make the model answer with a call written in the
model family's own syntax; llama.cpp's generic template handler passes the tools to the
template but does not parse the reply. :class:`ToolCallScanner` sits in the token
stream: it passes ordinary text through at once, holds back text that may be the start
of a call, and at the end parses the held-back part. Recognised forms:

* ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen2.5, Hermes);
* ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}]`` (Mistral);
* ``<|python_tag|>{...}`` or a reply that is only ``{"name": ..., "parameters": {...}}``
  (Llama 3.x), several separated by ``;``.

Text that turns out not to be a call is handed back as text, so nothing is lost.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from backends.context import ToolCall

MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
"""Markers that open a call anywhere in the reply."""
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


class ToolCallScanner:
    """Feed text pieces; get back what can be shown now; call :meth:`finish` at the end."""

    def __init__(self) -> None:
        self._shown: list[str] = []
        self._pending = ""
        self._captured: str | None = None
        self._at_start = True

    def feed(self, piece: str) -> str:
        """Take one piece of model output; return the text that is safe to show now."""
        if self._captured is not None:
            self._captured += piece
            return ""
        text = self._pending + piece
        if self._at_start:
            stripped = text.lstrip()
            if not stripped:
                self._pending = text
                return ""
            if stripped.startswith("{"):
                # A reply that opens with JSON may be a bare call (Llama 3.x): hold it all.
                self._captured = text
                self._pending = ""
                return ""
            self._at_start = False
        for marker in MARKERS:
            position = text.find(marker)
            if position >= 0:
                self._captured = text[position:]
                self._pending = ""
                return self._show(text[:position])
        # Keep back a tail that could be the beginning of a marker split across pieces.
        keep = 0
        for marker in MARKERS:
            for size in range(min(len(marker) - 1, len(text)), 0, -1):
                if marker.startswith(text[-size:]):
                    keep = max(keep, size)
                    break
        self._pending = text[len(text) - keep :] if keep else ""
        return self._show(text[: len(text) - keep])

    def _show(self, text: str) -> str:
        if text:
            self._shown.append(text)
        return text

    def finish(self) -> tuple[str, tuple[ToolCall, ...]]:
        """End of the reply: the text still to show, and the calls that were recognised."""
        if self._captured is None:
            rest, self._pending = self._pending, ""
            return self._show(rest), ()
        captured, self._captured = self._captured, None
        calls = parse_tool_calls(captured)
        if not calls:
            return self._show(captured), ()
        return "", calls


def parse_tool_calls(text: str) -> tuple[ToolCall, ...]:
    """The calls written in ``text`` (see the module docstring); ``()`` when none."""
    body = text.strip()
    items: list[Any] = []
    if body.startswith("<tool_call>"):
        for match in _TAGGED.finditer(body):
            items.append(_loads(match.group(1)))
    elif body.startswith("[TOOL_CALLS]"):
        loaded = _loads(body[len("[TOOL_CALLS]") :])
        items.extend(loaded if isinstance(loaded, list) else [loaded])
    else:
        body = body.removeprefix("<|python_tag|>").strip()
        loaded = _loads(body)
        if loaded is None and ";" in body:
            items.extend(_loads(part) for part in body.split(";"))
        else:
            items.extend(loaded if isinstance(loaded, list) else [loaded])
    calls = []
    for item in items:
        call = _to_call(item)
        if call is None:
            return ()
        calls.append(call)
    return tuple(calls)


def _loads(text: str) -> Any:
    try:
        return json.loads(text.strip())
    except ValueError:
        return None


def _to_call(item: Any) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=arguments)
