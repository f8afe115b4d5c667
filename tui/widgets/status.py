"""The status bar: backend, model, state, speed and token usage of the last reply."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from backends.untrusted import one_line

STATE_STYLES = {
    "loading": "$warning",
    "generating": "$accent",
    "ready": "$success",
    "error": "$error",
}


class StatusBar(Static):
    """One line under the prompt."""

    backend: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    state: reactive[str] = reactive("ready")
    speed: reactive[float | None] = reactive(None)
    """Tokens per second of the last reply."""
    usage: reactive[tuple[int, int] | None] = reactive(None)
    """Prompt and completion tokens of the last reply."""
    estimated: reactive[bool] = reactive(False)
    """True when the backend reported no usage and pieces were counted instead."""

    def render(self) -> Content:
        parts: list[Content | str | tuple[str, str]] = [
            (one_line(self.backend) or "no backend", "bold"),
            " · ",
            one_line(self.model) or "no model",
            " · ",
            (self.state, STATE_STYLES.get(self.state, "")),
        ]
        approx = "≈" if self.estimated else ""
        if self.speed is not None:
            parts += [" · ", f"{approx}{self.speed:.1f} tok/s"]
        if self.usage is not None:
            prompt, completion = self.usage
            parts += [" · ", f"{approx}{prompt}+{completion} tokens"]
        return Content.assemble(*parts)
