"""The runner: holds the registered platforms and routes each schema to its platform."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from backends.context import Context
from backends.errors import PlatformNotFoundError
from backends.session import Platform, Schema, Session


class Runner:
    """Routes schemas to the platform that can run them.

    ``async with Runner([...]) as runner`` closes every platform on exit.
    """

    def __init__(self, platforms: Iterable[Platform[Any]] = ()) -> None:
        self._platforms: list[Platform[Any]] = []
        for platform in platforms:
            self.register(platform)

    def register(self, platform: Platform[Any]) -> None:
        """Add a platform; a later one of the same schema type replaces the earlier."""
        self._platforms = [p for p in self._platforms if p.schema_type is not platform.schema_type]
        self._platforms.append(platform)

    @property
    def platforms(self) -> tuple[Platform[Any], ...]:
        return tuple(self._platforms)

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

    async def one_shot(self, schema: Schema, context: Context) -> str:
        """Run one complete generation over a copy of ``context`` and return the reply."""
        session = self.session(schema, context.copy())
        pieces = [piece async for piece in session.generate()]
        return "".join(pieces)

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
