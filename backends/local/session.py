"""A conversation with an on-device model, answered by its engine process.

Each request goes to the engine (:mod:`backends.local.process`) that holds the model; its
answers arrive on the engine's reader thread and are handed to the event loop through a
small queue, several tokens per wake-up when the loop is busy. ``cancel()`` stops the
stream at once and tells the engine to stop after the current token. The engine fits
the conversation into the context window by leaving out the oldest non-system messages;
a :class:`~backends.events.Notice` tells the user when that happens.

If the engine dies (a crash in llama.cpp, a kill, the out-of-memory killer) the reply
ends with :class:`~backends.local.errors.EngineCrashedError`; what arrived is kept and
marked, and the next request starts a fresh engine. A crash before the engine's first
reply with llama.cpp's CPU extra buffer types on is retried once in safe mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from backends.context import Context, ToolCall
from backends.errors import ConfigurationError
from backends.events import Notice, PlatformEvent, TextDelta, ToolCallsDone, Usage
from backends.local.errors import EngineCrashedError, ToolsUnsupportedError
from backends.local.process import Engine, EngineInfo
from backends.local.schema import LocalSchema
from backends.local.toolcalls import ToolCallScanner
from backends.session import Session

if TYPE_CHECKING:
    from backends.functions import Tool
    from backends.local.platform import LocalPlatform


class LocalSession(Session[LocalSchema]):
    """A conversation with a model loaded by :class:`LocalPlatform`."""

    platform: LocalPlatform

    def __init__(
        self, platform: LocalPlatform, schema: LocalSchema, context: Context | None = None
    ) -> None:
        super().__init__(platform, schema, context)
        self.engine: Engine | None = None
        """The engine that answered (or answers) this session's last request."""
        self._running: tuple[Engine, int] | None = None

    @property
    def num_parameters(self) -> int | None:
        """The loaded model's parameter count; ``None`` until the model is loaded."""
        info = self.engine.info if self.engine is not None else None
        return info.n_params or None if info is not None else None

    def update(self, **changes: Any) -> None:
        """Change per-reply parameters (sampling, ``max_tokens``, ``stop``...) in place.

        They apply from the next request to the model; the loaded model stays loaded
        (parameters that need a reload, such as ``n_ctx``, are refused: start a new
        session with a new schema for them). ``None`` returns a value to its default.
        """
        refused = sorted(set(changes) - LocalSchema.REPLY_FIELDS)
        if refused:
            raise ConfigurationError(
                f"{', '.join(refused)} cannot change in a running session.",
                reason="update() changes what applies to each reply: "
                f"{', '.join(sorted(LocalSchema.REPLY_FIELDS))}. The others need the "
                "model loaded again, or are not parameters of the local backend.",
                suggestion="Create a session with a new LocalSchema for those.",
            )
        last_n = changes.get("repeat_last_n")
        if last_n is not None and (not isinstance(last_n, int) or last_n < -1):
            raise ConfigurationError(
                reason=f"repeat_last_n must be -1 (the whole context), 0 (off) or more, "
                f"not {last_n!r}.",
                suggestion="Pass a number of recent tokens, or None for the default.",
            )
        if "stop" in changes:
            stop = changes["stop"]
            changes["stop"] = (stop,) if isinstance(stop, str) else tuple(stop or ())
        self.schema = dataclasses.replace(self.schema, **changes)

    async def _setup(self) -> None:
        self.engine = await asyncio.to_thread(self.platform.engine, self.schema)

    def _on_cancel(self) -> None:
        running = self._running
        if running is not None:
            running[0].cancel(running[1])

    async def _generate_once(self, context: Context) -> AsyncIterator[PlatformEvent]:
        if self.cancelled:
            return
        engine = self.engine
        if engine is None or not engine.alive:
            # Died or unloaded meanwhile (another model took its place): start it again.
            engine = self.engine = await asyncio.to_thread(self.platform.engine, self.schema)
        streamed = False
        while True:
            if engine.notice:
                notice, engine.notice = engine.notice, ""
                yield Notice(notice)
            try:
                async for event in self._ask(engine, context):
                    streamed = True
                    yield event
                return
            except EngineCrashedError:
                if streamed or self.cancelled:
                    raise
                replacement = await asyncio.to_thread(self.platform.recover, self.schema, engine)
                if replacement is None:
                    raise
                engine = self.engine = replacement
                streamed = True  # one retry at most

    async def _ask(self, engine: Engine, context: Context) -> AsyncIterator[PlatformEvent]:
        """One request to ``engine``; the events it answers with."""
        assert engine.info is not None
        tools = self._tools(engine.info, self.schema.functions)
        handoff = _Handoff(asyncio.get_running_loop())
        request = {
            "messages": context.to_messages(),
            "tools": tools or None,
            "sampling": self.schema.sampling(),
            "repeat_last_n": self.schema.repeat_last_n,
            "max_tokens": self.schema.max_tokens,
        }
        while not engine.busy.acquire(blocking=False):
            await asyncio.sleep(0.005)  # another session's reply is still running
        rid = engine.begin(request, handoff.put)
        self._running = (engine, rid)
        if self.cancelled:
            engine.cancel(rid)
        scanner = ToolCallScanner() if tools and not engine.info.parses_tool_calls else None
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
                    raise value
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
            self._running = None
            if not finished:
                # The consumer stopped early: the engine stops after the current token and
                # frees itself for the next request when it has.
                engine.cancel(rid)
        if usage is not None:
            prompt, completion = usage
            yield Usage(prompt, completion, prompt + completion)
        if calls:
            yield ToolCallsDone(calls)

    def _tools(self, info: EngineInfo, functions: tuple[Tool, ...]) -> list[dict[str, Any]]:
        if not functions:
            return []
        if not info.supports_tools:
            how = (
                f"chat format '{info.chat_format}'"
                if info.chat_format
                else "the chat template in the GGUF file"
            )
            name = self.engine.name if self.engine is not None else self.schema.model
            raise ToolsUnsupportedError(
                f"{name} cannot call functions.",
                reason=f"{how} has no support for tool calls.",
            )
        return [tool.to_openai() for tool in functions]


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
