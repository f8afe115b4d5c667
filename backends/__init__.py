"""spezichat's backend layer: one interface over OpenAI, fog nodes and on-device models.

The package is UI-free: it never imports ``tui`` or ``textual``. Importing it performs no
I/O and loads no network or inference library; platforms import those lazily.

Typical use::

    from backends import Context, Runner
    from backends.mock import MockPlatform, MockSchema

    runner = Runner([MockPlatform()])
    session = runner.session(MockSchema())
    session.context.append_user("Hello!")
    async for piece in session.generate():
        print(piece, end="")
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

# Public names and the submodule that defines each. They load on first access, so
# `import backends` (and `spezichat --version`) stays cheap.
_EXPORTS = {
    "Context": "context",
    "ContextEntry": "context",
    "Role": "context",
    "ToolCall": "context",
    "ConfigurationError": "errors",
    "IllegalContextError": "errors",
    "LLMError": "errors",
    "LLMStateError": "errors",
    "PlatformNotFoundError": "errors",
    "ToolLoopError": "errors",
    "UnknownLLMError": "errors",
    "Event": "events",
    "Notice": "events",
    "StateChanged": "events",
    "TextDelta": "events",
    "ToolCallRequested": "events",
    "ToolCallResult": "events",
    "Usage": "events",
    "Tool": "functions",
    "ToolResult": "functions",
    "llm_function": "functions",
    "load_tools": "functions",
    "Runner": "runner",
    "RunnerState": "runner",
    "Const": "function_constraints",
    "Format": "function_constraints",
    "JSONSchema": "function_constraints",
    "Pattern": "function_constraints",
    "UniqueItems": "function_constraints",
    "InvalidSecretError": "errors",
    "PlatformState": "state",
    "LLMState": "state",
    "Platform": "session",
    "Schema": "session",
    "Session": "session",
}

__all__ = [
    "ConfigurationError",
    "Const",
    "Context",
    "ContextEntry",
    "Event",
    "Format",
    "IllegalContextError",
    "InvalidSecretError",
    "JSONSchema",
    "LLMError",
    "LLMState",
    "LLMStateError",
    "Notice",
    "Pattern",
    "Platform",
    "PlatformNotFoundError",
    "PlatformState",
    "Role",
    "Runner",
    "RunnerState",
    "Schema",
    "Session",
    "StateChanged",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallRequested",
    "ToolCallResult",
    "ToolLoopError",
    "ToolResult",
    "UniqueItems",
    "UnknownLLMError",
    "Usage",
    "__version__",
    "llm_function",
    "load_tools",
]

if TYPE_CHECKING:
    from backends.context import Context, ContextEntry, Role, ToolCall
    from backends.errors import (
        ConfigurationError,
        IllegalContextError,
        InvalidSecretError,
        LLMError,
        LLMStateError,
        PlatformNotFoundError,
        ToolLoopError,
        UnknownLLMError,
    )
    from backends.events import (
        Event,
        Notice,
        StateChanged,
        TextDelta,
        ToolCallRequested,
        ToolCallResult,
        Usage,
    )
    from backends.function_constraints import Const, Format, JSONSchema, Pattern, UniqueItems
    from backends.functions import Tool, ToolResult, llm_function, load_tools
    from backends.runner import Runner, RunnerState
    from backends.session import Platform, Schema, Session
    from backends.state import LLMState, PlatformState


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
