"""Chat-completions wire format: the request body and the streamed chunks.

:class:`ChatCompletionsSchema` holds the model parameters every OpenAI-compatible
server understands; :func:`build_request_body` turns a schema and a context into the
CreateChatCompletionRequest body; :class:`StreamAccumulator` turns the parsed chunks of a
streamed reply (CreateChatCompletionStreamResponse) into platform events, assembling
tool calls from their fragments by ``index``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from backends.context import Context, ToolCall
from backends.errors import ConfigurationError
from backends.events import Notice, PlatformEvent, TextDelta, ToolCallsDone, Usage
from backends.session import Schema


@dataclass(frozen=True)
class ResponseFormat:
    """The format the model must answer in: free text, any JSON object, or a JSON schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str = "response"
    """Name of the JSON schema (json_schema only)."""
    schema: Mapping[str, Any] | None = None
    """The JSON schema the reply must follow (json_schema only)."""
    strict: bool | None = True
    """Ask the server to follow the schema exactly (json_schema only)."""
    description: str | None = None
    """What the response is for; helps the model (json_schema only)."""

    def __post_init__(self) -> None:
        if self.type not in ("text", "json_object", "json_schema"):
            raise ConfigurationError(
                "The response format is not supported.",
                reason=f"'{self.type}' is not one of text, json_object, json_schema.",
                suggestion="Use one of the three response formats.",
            )
        if self.type == "json_schema" and self.schema is None:
            raise ConfigurationError(
                "The JSON-schema response format has no schema.",
                reason="A json_schema response format needs the schema the reply must follow.",
                suggestion="Pass schema={...}, or use the json_object format.",
            )

    @classmethod
    def json_object(cls) -> ResponseFormat:
        return cls("json_object")

    @classmethod
    def json_schema(
        cls, name: str, schema: Mapping[str, Any], *, strict: bool | None = True
    ) -> ResponseFormat:
        return cls("json_schema", name=name, schema=schema, strict=strict)

    def to_openai(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.name, "schema": dict(self.schema or {})}
        if self.strict is not None:
            spec["strict"] = self.strict
        if self.description:
            spec["description"] = self.description
        return {"type": "json_schema", "json_schema": spec}


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigurationError(
            f"The model parameter '{name}' is out of range.",
            reason=f"{name} is {value}, but it must lie between {low:g} and {high:g}.",
            suggestion=f"Set {name} to a value between {low:g} and {high:g}, or leave it unset.",
        )


@dataclass(frozen=True, kw_only=True)
class ChatCompletionsSchema(Schema):
    """Model parameters of the chat-completions API. Unset (None) values are not sent."""

    temperature: float | None = None
    """Sampling temperature, 0 to 2: higher is more random."""
    top_p: float | None = None
    """Nucleus sampling: only tokens within this probability mass (0 to 1)."""
    stop: tuple[str, ...] = ()
    """Up to 4 sequences at which the model stops generating."""
    max_tokens: int | None = None
    """Upper bound on generated tokens (including reasoning tokens); sent as the API's
    ``max_completion_tokens``. The same name as on the local and mock schemas."""
    seed: int | None = None
    """Ask for deterministic sampling (best effort, server dependent)."""
    presence_penalty: float | None = None
    """-2 to 2: positive values favour tokens not used yet (new topics)."""
    frequency_penalty: float | None = None
    """-2 to 2: positive values penalise tokens by how often they were used."""
    logit_bias: Mapping[str, int] | None = None
    """Token id (as a string) -> bias from -100 to 100."""
    response_format: ResponseFormat | None = None
    """Free text (default), any JSON object, or JSON following a schema."""
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Further request fields for servers with extensions; merged into the body last."""

    def __post_init__(self) -> None:
        _check_range("temperature", self.temperature, 0, 2)
        _check_range("top_p", self.top_p, 0, 1)
        _check_range("presence_penalty", self.presence_penalty, -2, 2)
        _check_range("frequency_penalty", self.frequency_penalty, -2, 2)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigurationError(
                "The model parameter 'max_tokens' is out of range.",
                reason=f"It is {self.max_tokens}; a reply needs at least 1 token.",
                suggestion="Set a positive number of tokens, or leave it unset.",
            )
        if len(self.stop) > 4:
            raise ConfigurationError(
                "Too many stop sequences.",
                reason=f"{len(self.stop)} stop sequences were given; the API accepts 4.",
                suggestion="Keep at most 4 stop sequences.",
            )
        for token, bias in (self.logit_bias or {}).items():
            if not str(token).isdigit() or not -100 <= bias <= 100:
                raise ConfigurationError(
                    "The logit bias is invalid.",
                    reason=f"Entry {token!r}: {bias!r}; keys are token ids, values -100 to 100.",
                    suggestion='Use token ids as keys, for example {"50256": -100}.',
                )


_API_NAMES = {"max_tokens": "max_completion_tokens"}
"""Schema fields whose request field has another name in the API."""


def model_parameters(schema: ChatCompletionsSchema) -> dict[str, Any]:
    """The schema's model parameters as request fields (unset ones left out)."""
    body: dict[str, Any] = {}
    for name in (
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    ):
        value = getattr(schema, name)
        if value is not None:
            body[_API_NAMES.get(name, name)] = value
    if schema.stop:
        body["stop"] = list(schema.stop)
    if schema.logit_bias:
        body["logit_bias"] = {str(k): int(v) for k, v in schema.logit_bias.items()}
    if schema.response_format is not None:
        body["response_format"] = schema.response_format.to_openai()
    return body


def build_request_body(
    schema: ChatCompletionsSchema,
    context: Context,
    *,
    stream: bool = True,
    include_usage: bool = True,
) -> dict[str, Any]:
    """The CreateChatCompletionRequest body for ``context`` under ``schema``."""
    body: dict[str, Any] = {"model": schema.model, "messages": context.to_messages()}
    body.update(model_parameters(schema))
    if schema.functions:
        body["tools"] = [tool.to_openai() for tool in schema.functions]
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    body.update(schema.extra_body)
    return body


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


_FINISH_NOTICES = {
    "length": "The reply was cut off at the token limit (max_tokens).",
    "content_filter": "The reply was cut off by the server's content filter.",
}


class StreamAccumulator:
    """Turns streamed chat-completion chunks into events; one instance per request.

    Feed every decoded chunk to :meth:`feed` (it returns the events to emit now: text
    deltas, usage) and call :meth:`finish` once the stream ended (it returns the final
    :class:`ToolCallsDone` when the model asked for function calls, or a notice when the
    reply was cut off).
    """

    def __init__(self) -> None:
        self.text_received = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.pieces = 0
        """Pieces of content so far (text, refusals, tool-call fragments, the finish
        reason, usage): what tells a progressing reply from keep-alive messages."""
        self._calls: dict[int, _PartialCall] = {}

    @property
    def received_output(self) -> bool:
        """Whether any text or tool call arrived (after that, a retry would repeat output)."""
        return self.text_received or bool(self._calls)

    def feed(self, chunk: Mapping[str, Any]) -> list[PlatformEvent]:
        """The events to emit now for one decoded chunk (text deltas, usage)."""
        out: list[PlatformEvent | str] = []
        self.feed_into(chunk, out)
        return [TextDelta(item) if isinstance(item, str) else item for item in out]

    def feed_into(self, chunk: Mapping[str, Any], events: list[PlatformEvent | str]) -> None:
        """Like :meth:`feed`, but append to ``events``, text as plain ``str``.

        The hot path of streaming: it runs once per token, so text is not wrapped in an
        event object here (the reader merges adjacent strings into one TextDelta), and
        since JSON decodes to plain dicts, exact type checks come before Mapping checks.
        """
        for choice in chunk.get("choices") or ():
            if type(choice) is not dict and not isinstance(choice, Mapping):
                continue
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text and type(text) is str:
                    self.text_received = True
                    self.pieces += 1
                    events.append(text)
                refusal = delta.get("refusal")
                if refusal and type(refusal) is str:
                    self.text_received = True
                    self.pieces += 1
                    events.append(refusal)
                calls = delta.get("tool_calls")
                if calls:
                    self.pieces += 1
                    for position, fragment in enumerate(calls):
                        self._add_fragment(position, fragment)
            finish = choice.get("finish_reason")
            if finish:
                self.pieces += 1
                self.finish_reason = str(finish)
        usage = chunk.get("usage")
        if usage and isinstance(usage, Mapping):
            self.pieces += 1
            self.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                total_tokens=int(usage.get("total_tokens") or 0),
            )
            events.append(self.usage)

    def _add_fragment(self, position: int, fragment: Any) -> None:
        if not isinstance(fragment, Mapping):
            return
        index = fragment.get("index")
        index = index if isinstance(index, int) else position
        call = self._calls.setdefault(index, _PartialCall())
        if fragment.get("id"):
            call.id = str(fragment["id"])
        function = fragment.get("function") or {}
        if function.get("name"):
            call.name += str(function["name"])
        if function.get("arguments"):
            call.arguments.append(str(function["arguments"]))

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls assembled so far, in index order."""
        return tuple(
            ToolCall(
                id=call.id or f"call_{uuid.uuid4().hex[:24]}",
                name=call.name,
                arguments="".join(call.arguments),
            )
            for _, call in sorted(self._calls.items())
        )

    def finish(self) -> list[PlatformEvent]:
        # Some compatible servers end tool-call turns with finish_reason "stop": the
        # assembled calls decide, not the label.
        if self._calls:
            return [ToolCallsDone(self.tool_calls())]
        notice = _FINISH_NOTICES.get(self.finish_reason or "")
        return [Notice(notice)] if notice else []
