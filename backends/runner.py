"""The runner: holds the registered platforms and routes each schema to its platform."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import Any

from backends.context import Context
from backends.errors import PlatformNotFoundError
from backends.session import Platform, Schema, Session
from backends.state import PlatformState, StateListener, StateListeners

RunnerState = PlatformState
"""The runner's state: SpeziLLM's ``LLMRunner.State`` (idle or processing)."""


class Runner:
    """Routes schemas to the platform that can run them.

    ``async with Runner([...]) as runner`` closes every platform on exit. :attr:`state`
    is ``PROCESSING`` while any registered platform processes.
    """

    def __init__(self, platforms: Iterable[Platform[Any]] = ()) -> None:
        self._platforms: list[Platform[Any]] = []
        self._unsubscribe: dict[int, Callable[[], None]] = {}
        """Removes the runner's listener from each registered platform (by id)."""
        self._state = RunnerState.IDLE
        self._state_listeners = StateListeners()
        for platform in platforms:
            self.register(platform)

    def register(self, platform: Platform[Any]) -> None:
        """Add a platform; a later one of the same schema type replaces the earlier."""
        for old in self._platforms:
            if old.schema_type is platform.schema_type:
                self._unsubscribe.pop(id(old), lambda: None)()
        self._platforms = [p for p in self._platforms if p.schema_type is not platform.schema_type]
        self._platforms.append(platform)
        self._unsubscribe[id(platform)] = platform.add_state_listener(self._platform_changed)
        self._platform_changed(platform.state)

    @property
    def platforms(self) -> tuple[Platform[Any], ...]:
        return tuple(self._platforms)

    # State -----------------------------------------------------------------------------
    @property
    def state(self) -> RunnerState:
        """``PROCESSING`` while any registered platform processes, else ``IDLE``."""
        return self._state

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(state)`` whenever :attr:`state` changes (on the event loop,
        see :class:`~backends.session.StateListeners`); returns what removes it."""
        return self._state_listeners.add(listener)

    def _platform_changed(self, _state: PlatformState) -> None:
        busy = any(p.state is PlatformState.PROCESSING for p in self._platforms)
        state = RunnerState.PROCESSING if busy else RunnerState.IDLE
        if state is not self._state:
            self._state = state
            self._state_listeners.notify(state)

    # Sessions --------------------------------------------------------------------------
    def platform_for(self, schema: Schema) -> Platform[Any]:
        # The most specific schema type wins (a subclass over its base).
        candidates = [p for p in self._platforms if p.accepts(schema)]
        if not candidates:
            raise PlatformNotFoundError(
                reason=f"No registered platform accepts {type(schema).__name__}."
            )
        return max(candidates, key=lambda p: len(p.schema_type.__mro__))

    def session(self, schema: Schema, context: Context | None = None) -> Session[Any]:
        """Create a session for ``schema`` on its platform."""
        return self.platform_for(schema).session(schema, context)

    async def one_shot_stream(self, schema: Schema, context: Context) -> AsyncGenerator[str, None]:
        """Run one generation over a copy of ``context``, yielding the reply's pieces as
        they arrive (SpeziLLM's ``oneShot``). ``context`` itself is left as it was.

        Errors are raised as :class:`~backends.errors.LLMError` from the iteration.
        Closing the generator early (``aclose()``, or ``contextlib.aclosing`` around an
        ``async for`` that may break) stops the generation; function calls of ``schema``
        run as in any session, without an approver.
        """
        session = self.session(schema, context.copy())
        pieces = session.generate()
        try:
            async for piece in pieces:
                yield piece
        finally:
            await pieces.aclose()

    async def one_shot(self, schema: Schema, context: Context) -> str:
        """Run one complete generation over a copy of ``context`` and return the reply."""
        stream = self.one_shot_stream(schema, context)
        try:
            return "".join([piece async for piece in stream])
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        for platform in self._platforms:
            await platform.aclose()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
