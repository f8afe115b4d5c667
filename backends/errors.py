"""Typed errors shared by every platform.

Each error carries the triad a person needs: what happened (``description``), why it
happened (``reason``) and what to do about it (``suggestion``). Platforms subclass
:class:`LLMError` for their own failures so callers can catch precisely.
"""

from __future__ import annotations

from collections.abc import Iterator


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (or its own ``!``, ``?``, ``…``).

    For composed messages that end in text from elsewhere (an exception's message, a
    server's words), which may or may not end with a period already.
    """
    text = text.rstrip()
    while text.endswith(".") and not text.endswith("..."):
        text = text[:-1].rstrip()
    return text + ("" if text.endswith(("!", "?", "…", "...")) else ".")


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (``__cause__``, else ``__context__``), once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class LLMError(Exception):
    """Base class of every error raised by the backend layer."""

    description: str = "Unknown LLM error."
    reason: str = "An unexpected error occurred while running the language model."
    suggestion: str = "Retry the request; if it keeps failing, restart the program."

    def __init__(
        self,
        description: str | None = None,
        *,
        reason: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        if description is not None:
            self.description = description
        if reason is not None:
            self.reason = reason
        if suggestion is not None:
            self.suggestion = suggestion
        super().__init__(self.description)

    def __str__(self) -> str:
        return self.description

    def explain(self) -> str:
        """Return description, reason and suggestion as three lines."""
        return f"{self.description}\n{self.reason}\n{self.suggestion}"

    def to_dict(self) -> dict[str, str]:
        return {
            "type": type(self).__name__,
            "description": self.description,
            "reason": self.reason,
            "suggestion": self.suggestion,
        }


class UnknownLLMError(LLMError):
    """An error no platform could classify more precisely."""


class LLMStateError(LLMError):
    """The session was used in a state that does not allow the operation."""

    description = "The model is not ready."
    reason = "The session is busy or failed earlier and cannot start a new generation."
    suggestion = "Wait for the current reply to finish or stop it, then try again."


class IllegalContextError(LLMError):
    """The context lacks what a generation needs (for example a user message)."""

    description = "The conversation cannot be sent to the model."
    reason = "The conversation contains no message the model could answer."
    suggestion = "Type a message first, then send it."


class ConfigurationError(LLMError):
    """A schema or platform was configured with values that cannot work."""

    description = "The model configuration is invalid."
    reason = "A setting has a value the backend cannot use."
    suggestion = "Check the values named in the message and correct them."


class PlatformNotFoundError(LLMError):
    """No registered platform accepts the given schema."""

    description = "No backend can run this model configuration."
    reason = "The runner has no platform registered for this kind of schema."
    suggestion = "Register the matching platform with the runner (for example OpenAIPlatform)."


class ToolLoopError(LLMError):
    """The model kept calling tools beyond the allowed number of rounds."""

    description = "The model called tools too many times in a row."
    reason = (
        "The model kept asking for function calls and reached the limit of rounds in a "
        "row without giving a final answer."
    )
    suggestion = (
        "Rephrase the request so that it needs fewer steps, and check that the tools "
        "answer what the model asks (a function that keeps failing is called again)."
    )


class InvalidSecretError(ConfigurationError):
    """An API key or token has characters that cannot go into an HTTP header.

    The message names where the secret came from and what is wrong with it, never the
    secret itself.
    """

    description = "The key cannot be used."
    reason = "A key or token is printable ASCII without spaces, and this one is not."
    suggestion = "Copy the key again from where it was issued and enter it once more."
