"""MCP tools as :class:`backends.functions.Tool`: offered, approved, validated and limited
like Python functions.

Names: ``SERVER__TOOL``, each part reduced to the OpenAI function-name alphabet
(``[a-zA-Z0-9_-]``), at most 64 characters (a longer one is cut and gets a short hash), and
unique: a name that a Python function (``--tools``) or an earlier server already uses gets
``_2``, ``_3``... Descriptions and schemas are the server's text: descriptions lose their
control characters before they go anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backends.context import ToolCall
from backends.errors import sentence
from backends.functions import Tool, ToolResult, json_object, settle_call
from backends.untrusted import printable

MAX_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

Caller = Callable[[str, str, dict[str, Any], str], Awaitable[ToolResult]]
"""``(server, server's tool name, arguments, name for the model) -> result``; never
raises (see :meth:`backends.mcp.manager.McpManager.call`)."""


@dataclass(frozen=True)
class RemoteTool:
    """A tool as a server listed it (its own name, description and input schema)."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


def sanitize(text: str) -> str:
    """``text`` in the function-name alphabet: other characters become ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "x"


def _fit(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def assign_names(tools: Sequence[RemoteTool], reserved: Iterable[str] = ()) -> list[str]:
    """The model-facing name of each tool, in order: unique, valid and stable."""
    taken = set(reserved)
    names: list[str] = []
    for tool in tools:
        base = _fit(f"{sanitize(tool.server)}__{sanitize(tool.name)}")
        name, number = base, 1
        while name in taken:
            number += 1
            suffix = f"_{number}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        taken.add(name)
        names.append(name)
    return names


def openai_parameters(schema: Any) -> dict[str, Any]:
    """A server's input schema as a function's ``parameters`` (always an object schema)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    parameters = dict(schema)
    parameters.setdefault("type", "object")
    if parameters.get("type") == "object":
        parameters.setdefault("properties", {})
    return parameters


class McpTool(Tool):
    """One tool of one MCP server, under its model-facing name.

    Arguments are checked as JSON objects here and against the input schema by the
    manager (off the event loop); the call goes through :class:`McpManager`, whose
    failures (a crashed or hung server, an error the server returns) come back as error
    results. ``approve`` is the server's approval policy ("ask" or "always").
    """

    def __init__(self, remote: RemoteTool, name: str, call: Caller, *, approve: str) -> None:
        # Not Tool.__init__: the schema is the server's, not derived from a signature.
        self.name = name
        self.remote = remote
        self.server = remote.server
        self.approve = approve
        self.description = printable(remote.description)
        self.parameters = openai_parameters(remote.input_schema)
        self.is_async = True
        self._call = call

        async def call_remote(**kwargs: Any) -> ToolResult:
            return await call(remote.server, remote.name, kwargs, name)

        self.fn = call_remote

    def __repr__(self) -> str:
        return f"McpTool({self.name!r} = {self.server}/{self.remote.name})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, McpTool)
            and other.name == self.name
            and other.remote == self.remote
            and other.approve == self.approve
        )

    def __hash__(self) -> int:
        return hash((self.name, self.server, self.remote.name))

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        """The model's JSON arguments as an object; raises ``ValueError``."""
        return json_object(arguments)

    async def invoke(self, arguments: str, *, timeout: float | None = None) -> ToolResult:
        """Call the tool on its server with the model's arguments; never raises.

        After ``timeout`` seconds the call is cancelled (the server is told) and the
        model gets an error naming the limit, as for Python functions.
        """
        try:
            kwargs = self.parse_arguments(arguments)
        except ValueError as exc:
            return ToolResult.error(
                sentence(f"Invalid arguments for function '{self.name}': {exc}")
            )
        running = asyncio.ensure_future(
            self._call(self.server, self.remote.name, kwargs, self.name)
        )
        return await settle_call(
            running,
            name=self.name,
            timeout=timeout,
            timed_out=(
                f"the MCP server '{self.server}' did not answer within the limit of "
                "{limit} seconds"
            ),
            render=lambda result: result,
        )


def approver_with_policy(
    tools: Callable[[], Sequence[Tool]],
    ask: Callable[[ToolCall], Awaitable[bool]],
    always: Callable[[ToolCall], Awaitable[bool]] | None = None,
) -> Callable[[ToolCall], Awaitable[bool]]:
    """An approver that asks ``ask`` about each call, except calls of the tools of
    ``approve = "always"`` servers: those run (after ``always``, which may show the call,
    when given). ``tools`` gives the functions offered now."""

    async def approve(call: ToolCall) -> bool:
        tool = next((t for t in tools() if t.name == call.name), None)
        if isinstance(tool, McpTool) and tool.approve == "always":
            return True if always is None else await always(call)
        return await ask(call)

    return approve


def render_result(result: Any) -> ToolResult:
    """An SDK ``CallToolResult`` as the text the model gets (duck-typed: no SDK import).

    Text blocks are joined; images and audio are described (the chat API takes text
    here); resources show their text or their address. Without blocks, the structured
    content is the result as JSON.
    """
    parts: list[str] = []
    for block in getattr(result, "content", None) or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            data = str(getattr(block, "data", ""))
            mime = getattr(block, "mime_type", None) or "unknown type"
            parts.append(f"[{kind}: {mime}, about {len(data) * 3 // 4} bytes, not shown]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            uri = getattr(resource, "uri", "")
            parts.append(str(text) if text is not None else f"[resource: {uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {getattr(block, 'uri', '')}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    text = "\n".join(parts)
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        text = json.dumps(structured, ensure_ascii=False, default=str)
    if getattr(result, "is_error", False):
        return ToolResult.error(text or "The tool reported an error without a message.")
    return ToolResult(text or "(the tool returned no result)")


__all__ = [
    "MAX_NAME",
    "McpTool",
    "RemoteTool",
    "approver_with_policy",
    "assign_names",
    "openai_parameters",
    "render_result",
    "sanitize",
]
