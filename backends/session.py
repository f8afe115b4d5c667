"""Schema -> Platform -> Session: the abstraction every backend implements.

* A :class:`Schema` is the frozen configuration of one LLM (model, system prompts,
  parameters, functions, whether output is injected into the context).
* A :class:`Platform` turns a schema into a session. It owns what sessions share (an
  HTTP client, a loaded model), limits how many streams run at once and reports whether
  any of its sessions is generating (:attr:`Platform.state`, with listeners).
* A :class:`Session` owns the context and the state of one conversation. ``stream()`` is
  an async iterator of typed events and ``generate()`` of text pieces; ``cancel()``
  stops the generation between two pieces.

Platforms implement :meth:`Session._generate_once`, one model request that yields
:mod:`backends.events`. The base class runs the tool loop, keeps the context up to date,
tracks the state and maps unexpected exceptions to :class:`~backends.errors.LLMError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from backends.context import CANCELLED_TOOL_RESULT, Context, Role, ToolCall
from backends.errors import (
    IllegalContextError,
    LLMError,
    LLMStateError,
    ToolLoopError,
    UnknownLLMError,
)
from backends.events import (
    Event,
    PlatformEvent,
    StateChanged,
    TextDelta,
    ToolCallRequested,
    ToolCallResult,
    ToolCallsDone,
    Usage,
)
from backends.functions import Tool, ToolResult
from backends.state import LLMState, PlatformState, StateListener, StateListeners

log = logging.getLogger(__name__)

ToolApprover = Callable[[ToolCall], Awaitable[bool]]
"""Asked before each function call runs; ``False`` refuses the call."""


@dataclass(frozen=True, kw_only=True)
class Schema:
    """Frozen configuration of one LLM. Platforms subclass it with their parameters."""

    model: str
    """Model identifier as the backend knows it (an OpenAI model id, a GGUF path...)."""
    system_prompts: tuple[str, ...] = ()
    """System prompts placed at the start of a fresh context."""
    functions: tuple[Tool, ...] = ()
    """Functions the model may call (see :func:`backends.functions.llm_function`)."""
    inject_into_context: bool = True
    """Whether generated text is appended to the session's context."""
    max_tool_rounds: int = 8
    """How many times in a row the model may call tools before the loop gives up."""
    tool_timeout: float | None = 60.0
    """Seconds a function call may run before the model gets a timeout error; ``None``: no limit."""

    def tool(self, name: str) -> Tool | None:
        for tool in self.functions:
            if tool.name == name:
                return tool
        return None


S = TypeVar("S", bound=Schema)


class Platform(ABC, Generic[S]):
    """Turns schemas of one kind into sessions and owns what they share."""

    name: ClassVar[str] = "platform"
    schema_type: ClassVar[type[Schema]] = Schema

    def __init__(self, *, max_concurrent_streams: int = 4) -> None:
        if max_concurrent_streams < 1:
            raise ValueError("max_concurrent_streams must be at least 1")
        self.max_concurrent_streams = max_concurrent_streams
        self._semaphore: asyncio.Semaphore | None = None
        self._generating = 0
        self._state_listeners = StateListeners()

    @property
    def state(self) -> PlatformState:
        """``PROCESSING`` while any of the platform's sessions generates, else ``IDLE``."""
        return PlatformState.PROCESSING if self._generating else PlatformState.IDLE

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(state)`` whenever :attr:`state` changes (see
        :class:`StateListeners`); returns a function that removes the listener."""
        return self._state_listeners.add(listener)

    @contextlib.contextmanager
    def processing(self) -> Iterator[None]:
        """Count one generation for :attr:`state` for the duration (sessions hold this
        while they generate, from loading to the last piece or the error)."""
        self._generating += 1
        if self._generating == 1:
            self._state_listeners.notify(PlatformState.PROCESSING)
        try:
            yield
        finally:
            self._generating -= 1
            if self._generating == 0:
                self._state_listeners.notify(PlatformState.IDLE)

    @abstractmethod
    def session(self, schema: S, context: Context | None = None) -> Session[S]:
        """Create a session for ``schema``; ``context`` continues an earlier conversation."""

    def accepts(self, schema: Schema) -> bool:
        return isinstance(schema, self.schema_type)

    @contextlib.asynccontextmanager
    async def stream_slot(self) -> AsyncIterator[None]:
        """Hold one of the platform's concurrent-stream slots for the duration."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent_streams)
        async with self._semaphore:
            yield

    async def aclose(self) -> None:
        """Release shared resources (HTTP clients, loaded models)."""


class Session(ABC, Generic[S]):
    """One conversation with one model."""

    def __init__(self, platform: Platform[S], schema: S, context: Context | None = None) -> None:
        self.platform = platform
        self.schema = schema
        self.context = (
            context if context is not None else Context.with_system(schema.system_prompts)
        )
        self.approver: ToolApprover | None = None
        """Asked before every function call; ``None`` runs every call."""
        self.error: LLMError | None = None
        """The error that ended the last generation, if any."""
        self.last_usage: Usage | None = None
        """Token usage the backend reported for the last request."""
        self._state = LLMState.UNINITIALIZED
        self._cancelled = False
        self._tool_task: asyncio.Task[ToolResult] | None = None

    # State ---------------------------------------------------------------------------
    @property
    def state(self) -> LLMState:
        return self._state

    def _set_state(self, state: LLMState) -> StateChanged:
        self._state = state
        return StateChanged(state)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called for the running generation."""
        return self._cancelled

    # Hooks for platforms ---------------------------------------------------------------
    async def _setup(self) -> None:
        """Prepare before the first generation (load a model, test model access)."""

    @abstractmethod
    def _generate_once(self, context: Context) -> AsyncIterator[PlatformEvent]:
        """Run one model request over ``context``.

        Yield :class:`TextDelta` for text, :class:`Usage` when known and, when the
        model asked for function calls, one final :class:`ToolCallsDone`.
        """

    def _on_cancel(self) -> None:
        """Called by :meth:`cancel`; platforms may abort blocking I/O here."""

    # Public API --------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the running generation after the current piece; the partial reply stays.

        A function call that is running is stopped too (see :meth:`Tool.invoke`); the
        model is told that the user stopped it. Call this on the session's event loop.
        """
        if self._state in (LLMState.GENERATING, LLMState.LOADING):
            self._cancelled = True
            self._on_cancel()
            if self._tool_task is not None:
                self._tool_task.cancel()

    async def generate(self) -> AsyncGenerator[str, None]:
        """Generate a reply to the context, yielding text pieces as they arrive."""
        stream = self.stream()
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    yield event.text
        finally:
            # Close the event stream now, not when it is garbage collected, so that a
            # consumer that stops early leaves the session ready at once.
            await stream.aclose()

    async def stream(self) -> AsyncGenerator[Event, None]:
        """Generate a reply to the context, yielding every :mod:`backends.events` event."""
        if self._state in (LLMState.GENERATING, LLMState.LOADING):
            raise LLMStateError()
        if not any(entry.role in (Role.USER, Role.TOOL) for entry in self.context):
            raise IllegalContextError()
        self._cancelled = False
        self.error = None
        context = self.context if self.schema.inject_into_context else self.context.copy()
        finished = False
        # The platform is processing until the reply ends, however it ends; it is idle
        # again (and the session ready) before the final READY event goes out.
        with self.platform.processing():
            try:
                if self._state in (LLMState.UNINITIALIZED, LLMState.ERROR):
                    yield self._set_state(LLMState.LOADING)
                    await self._setup()
                yield self._set_state(LLMState.GENERATING)
                async for event in self._tool_loop(context):
                    yield event
                finished = True
            except LLMError as error:
                self._fail(context, error)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                self._stopped(context)
                raise
            except Exception as exc:
                log.exception("unexpected error during generation")
                wrapped = UnknownLLMError(reason=f"{type(exc).__name__}: {exc}")
                self._fail(context, wrapped)
                raise wrapped from exc
            finally:
                if not finished and self.state is LLMState.GENERATING:
                    # The consumer stopped iterating early.
                    self._stopped(context)
            ready = self._set_state(LLMState.READY)
        yield ready

    def _stopped(self, context: Context) -> None:
        context.mark_interrupted("stopped")
        # A call without a result would make the next request invalid (see to_messages).
        context.answer_open_calls(CANCELLED_TOOL_RESULT)
        self._state = LLMState.READY

    def _fail(self, context: Context, error: LLMError) -> None:
        context.mark_interrupted("error")
        context.answer_open_calls(CANCELLED_TOOL_RESULT)
        self.error = error
        self._state = LLMState.ERROR

    async def _tool_loop(self, context: Context) -> AsyncIterator[Event]:
        for _round in range(self.schema.max_tool_rounds + 1):
            calls: tuple[ToolCall, ...] = ()
            async with self.platform.stream_slot():
                stream = self._generate_once(context)
                try:
                    async for event in stream:
                        if isinstance(event, TextDelta):
                            context.append_assistant(event.text)
                            yield event
                        elif isinstance(event, ToolCallsDone):
                            calls = event.calls
                        else:
                            if isinstance(event, Usage):
                                self.last_usage = event
                            yield event
                        if self._cancelled:
                            break
                finally:
                    await _aclose(stream)
            if self._cancelled:
                context.mark_interrupted("stopped")
                return
            if not calls:
                entry = context.complete_assistant()
                if entry is None:
                    # The model sent no text at all: record an empty, complete reply.
                    context.append_assistant("", complete=True)
                return
            if _round == self.schema.max_tool_rounds:
                raise ToolLoopError()
            context.append_tool_calls(calls)
            for call in calls:
                yield ToolCallRequested(call)
                if self._cancelled:
                    # Stopped during an earlier call: this one does not run.
                    result, approved = ToolResult.error(CANCELLED_TOOL_RESULT), True
                else:
                    result, approved = await self._run_tool(call)
                context.append_tool_result(call.id, call.name, result.content)
                yield ToolCallResult(call, result.content, result.is_error, approved)
            if self._cancelled:
                return

    async def _run_tool(self, call: ToolCall) -> tuple[ToolResult, bool]:
        tool = self.schema.tool(call.name)
        if tool is None:
            known = ", ".join(t.name for t in self.schema.functions) or "none"
            return ToolResult.error(
                f"Unknown function '{call.name}'. Available functions: {known}."
            ), True
        if self.approver is not None and not await self.approver(call):
            return ToolResult.error("The user declined to run this function call."), False
        if self._cancelled:
            return ToolResult.error(CANCELLED_TOOL_RESULT), True
        task = asyncio.ensure_future(tool.invoke(call.arguments, timeout=self.schema.tool_timeout))
        self._tool_task = task
        try:
            # Not ``await task``: a cancelled generation raises here, while a call that
            # :meth:`cancel` stopped ends as a cancelled task.
            await asyncio.wait((task,))
        finally:
            self._tool_task = None
            if not task.done():
                task.cancel()
        if task.cancelled():
            return ToolResult.error(CANCELLED_TOOL_RESULT), True
        return task.result(), True


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
