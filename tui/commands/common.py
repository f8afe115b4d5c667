"""Helpers shared by the subcommands: error output and settings loading."""

from __future__ import annotations

import sys

from backends.errors import LLMError
from tui.settings import Settings


def fail(error: LLMError) -> int:
    """Print an error's description, reason and suggestion to stderr; return exit code 1."""
    print(f"error: {error.description}", file=sys.stderr)
    print(f"  why: {error.reason}", file=sys.stderr)
    print(f"  fix: {error.suggestion}", file=sys.stderr)
    return 1


def usage_error(command: str, message: str) -> int:
    print(f"usage: spezichat {command} ...", file=sys.stderr)
    print(f"spezichat {command}: error: {message}", file=sys.stderr)
    return 2


def load_settings() -> Settings | None:
    """Load settings, printing the error and returning ``None`` when the file is broken."""
    try:
        return Settings.load()
    except LLMError as error:
        fail(error)
        return None
