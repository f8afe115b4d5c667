"""The mock backend: a scripted model for demos, screenshots and tests (no network)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tui.backends import Backend

if TYPE_CHECKING:
    from backends.mock import MockPlatform, MockSchema
    from tui.settings import Settings
    from tui.wiring import ChatOptions


def platform(settings: Settings, overrides: Mapping[str, Any]) -> MockPlatform:
    from backends.mock import MockPlatform

    return MockPlatform()


def schema(options: ChatOptions, settings: Settings, tool_timeout: float) -> MockSchema:
    from backends.mock import MockSchema

    return MockSchema(
        model=options.model or "mock",
        system_prompts=options.system_prompts,
        functions=options.tools,
        tool_timeout=tool_timeout,
        **options.extra,
    )


BACKEND = Backend(
    id="mock",
    label="Mock model",
    summary="A scripted mock model for demos and tests (no network).",
    platform=platform,
    schema=schema,
)
