"""A conversation with an on-device model.

llama.cpp generates in a worker thread (it releases the GIL while it computes); each
token is handed to the event loop with ``loop.call_soon_threadsafe`` into an asyncio
queue, and the thread checks a stop flag between tokens, so ``cancel()`` takes effect
after the current token. Before each request the conversation is fitted into the context
window by leaving out the oldest non-system messages; a :class:`~backends.events.Notice`
tells the user when that happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from backends.context import Context, ToolCall
from backends.errors import LLMError
from backends.events import Notice, PlatformEvent, TextDelta, ToolCallsDone, Usage
from backends.local.errors import (
    GenerationError,
    ModelNotReadyError,
    PromptTooLongError,
    ToolsUnsupportedError,
)
from backends.local.formats import TRANSCRIPT
from backends.local.platform import LoadedModel, LocalPlatform, LocalSchema
from backends.local.toolcalls import ToolCallScanner
from backends.session import Session

if TYPE_CHECKING:
    from backends.functions import Tool

MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds around each message (role markers), generously counted."""
DEFAULT_REPLY_RESERVE = 512
"""Tokens kept free for the reply when max_tokens is unset."""

Put = Callable[[str, Any], None]


def fit_messages(
    model: LoadedModel,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    reserve: int,
) -> tuple[list[dict[str, Any]], int]:
    """Leave out the oldest non-system messages until the prompt fits the context window.

    Returns the messages to send and how many were left out. Call with the model's lock
    held (it tokenizes).
    """
    counts = [model.count_tokens(_message_text(message)) + MESSAGE_OVERHEAD for message in messages]
    fixed = model.count_tokens(json.dumps(tools)) if tools else 0
    budget = model.n_ctx - reserve - fixed
    total = sum(counts)
    if total <= budget:
        return messages, 0
    system = [i for i, m in enumerate(messages) if m["role"] == "system"]
    others = [i for i, m in enumerate(messages) if m["role"] != "system"]
    dropped = 0
    while total > budget and len(others) > 1:
        total -= counts[others.pop(0)]
        dropped += 1
        # A conversation must start with a user turn: drop orphaned replies and results.
        while len(others) > 1 and messages[others[0]]["role"] != "user":
            total -= counts[others.pop(0)]
            dropped += 1
    if total > budget:
        raise PromptTooLongError(
            reason=(
                f"The system prompt and the last message take about {total + fixed} tokens; "
                f"the context window holds {model.n_ctx}, with {reserve} kept for the reply."
            ),
        )
    return [messages[i] for i in sorted(system + others)], dropped


def _message_text(message: dict[str, Any]) -> str:
    text = message.get("content") or ""
    calls = message.get("tool_calls")
    return text + json.dumps(calls) if calls else text


class LocalSession(Session[LocalSchema]):
    """A conversation with a model loaded by :class:`LocalPlatform`."""

    platform: LocalPlatform

    def __init__(
        self, platform: LocalPlatform, schema: LocalSchema, context: Context | None = None
    ) -> None:
        super().__init__(platform, schema, context)
        self.model: LoadedModel | None = None
        """The loaded model once the first generation has set it up."""
        self._stop = threading.Event()

    async def _setup(self) -> None:
        self.model = await asyncio.to_thread(self.platform.model, self.schema)

    def _on_cancel(self) -> None:
        self._stop.set()

    async def _generate_once(self, context: Context) -> AsyncIterator[PlatformEvent]:
        model = self.model
        if model is None or model.closed:
            # Unloaded meanwhile (another model took its place): load it again.
            model = self.model = await asyncio.to_thread(self.platform.model, self.schema)
        tools = self._tools(model, self.schema.functions)
        stop = self._stop = threading.Event()
        if self.cancelled:
            stop.set()
        loop = asyncio.get_running_loop()
        handoff = _Handoff(loop)
        messages = context.to_messages()
        try:
            ended = loop.run_in_executor(
                model.executor, self._run, model, messages, tools, stop, handoff.put
            )
        except RuntimeError as exc:  # the model was unloaded a moment ago
            raise ModelNotReadyError(reason="The model was unloaded before the reply.") from exc
        scanner = ToolCallScanner() if tools and not model.parses_tool_calls else None
        native: dict[int, dict[str, str]] = {}
        usage: tuple[int, int] | None = None
        finished = False
        try:
            while True:
                kind, value = await handoff.get()
                if kind == "text":
                    text = scanner.feed(value) if scanner is not None else value
                    if text:
                        yield TextDelta(text)
                elif kind == "notice":
                    yield Notice(value)
                elif kind == "tool_calls":
                    _merge_tool_deltas(native, value)
                elif kind == "error":
                    error = _map_error(value)
                    if error is value:
                        raise error
                    raise error from value
                else:  # "done"
                    usage = value
                    break
            calls: tuple[ToolCall, ...] = ()
            if scanner is not None:
                rest, calls = scanner.finish()
                if rest:
                    yield TextDelta(rest)
            calls += tuple(
                ToolCall(id=item["id"], name=item["name"], arguments=item["arguments"])
                for _, item in sorted(native.items())
            )
            finished = True
        finally:
            if not finished:
                stop.set()
            await asyncio.shield(ended)
        if usage is not None:
            prompt, completion = usage
            yield Usage(prompt, completion, prompt + completion)
        if calls:
            yield ToolCallsDone(calls)

    def _tools(self, model: LoadedModel, functions: tuple[Tool, ...]) -> list[dict[str, Any]]:
        if not functions:
            return []
        if not model.supports_tools:
            how = (
                f"chat format '{model.chat_format}'"
                if model.chat_format
                else "the chat template in the GGUF file"
            )
            raise ToolsUnsupportedError(
                f"{model.name} cannot call functions.",
                reason=f"{how} has no support for tool calls.",
            )
        return [tool.to_openai() for tool in functions]

    def _run(
        self,
        model: LoadedModel,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        stop: threading.Event,
        put: Put,
    ) -> None:
        """Generate in the worker thread, handing every piece to the event loop."""
        try:
            with model.lock:
                if model.closed:
                    raise ModelNotReadyError(reason="The model was unloaded before the reply.")
                max_tokens = self.schema.max_tokens
                reserve = min(max_tokens or DEFAULT_REPLY_RESERVE, model.n_ctx // 2)
                fitted, dropped = fit_messages(model, messages, tools or None, reserve)
                if dropped:
                    put(
                        "notice",
                        f"The conversation is longer than the model's {model.n_ctx}-token "
                        f"context window: the {dropped} oldest message(s) were left out of "
                        "this reply (they stay in the conversation).",
                    )
                arguments = self.schema.sampling()
                if tools:
                    arguments["tools"] = tools
                    arguments["tool_choice"] = "auto"
                stream = model.llama.create_chat_completion(
                    messages=fitted, stream=True, **arguments
                )
                count = 0
                # After the transcript's cue "Assistant:" a reply starts with a space.
                leading = model.chat_format == TRANSCRIPT
                try:
                    for chunk in stream:
                        delta = chunk["choices"][0].get("delta") or {}
                        text = delta.get("content")
                        if text:
                            count += 1
                            if leading:
                                text = text.lstrip()
                                leading = not text
                        if text:
                            put("text", text)
                        if delta.get("tool_calls"):
                            put("tool_calls", delta["tool_calls"])
                        if stop.is_set():
                            break
                finally:
                    stream.close()
                # llama.cpp keeps the evaluated tokens: the prompt plus what it generated.
                prompt = max(int(model.llama.n_tokens) - count, 0)
            put("done", (prompt, count))
        except BaseException as exc:
            put("error", exc)


class _Handoff:
    """Carries items from the llama.cpp thread to the event loop.

    The thread appends to a deque and wakes the loop only when no wake-up is pending, so
    a busy loop picks up several tokens per wake-up instead of one callback per token.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[tuple[str, Any]] = deque()
        self._wake_pending = False
        self._ready = asyncio.Event()

    def put(self, kind: str, value: Any) -> None:
        """Called from the worker thread."""
        self._items.append((kind, value))
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the event loop is gone
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        self._ready.set()

    async def get(self) -> tuple[str, Any]:
        while not self._items:
            self._ready.clear()
            if self._items:
                break
            await self._ready.wait()
        return self._items.popleft()


def _merge_tool_deltas(calls: dict[int, dict[str, str]], deltas: list[dict[str, Any]]) -> None:
    for delta in deltas:
        item = calls.setdefault(int(delta.get("index", 0)), {"id": "", "name": "", "arguments": ""})
        if delta.get("id"):
            item["id"] = delta["id"]
        function = delta.get("function") or {}
        if function.get("name"):
            item["name"] = function["name"]
        item["arguments"] += function.get("arguments") or ""


def _map_error(exc: BaseException) -> BaseException:
    if isinstance(exc, LLMError) or not isinstance(exc, Exception):
        return exc
    message = str(exc)
    if "exceed context window" in message:
        return PromptTooLongError(reason=f"llama.cpp: {message}")
    if "alternate" in message or "template" in message.lower():
        return GenerationError(
            "The model's chat template rejected the conversation.",
            reason=message,
            suggestion="Start a new chat, or set another chat format (local.chat_format).",
        )
    return GenerationError(reason=f"llama.cpp: {type(exc).__name__}: {message}")
