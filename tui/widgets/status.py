"""The status bar: backend and whether it is working, model, state, speed and token usage."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from backends.state import LLMState
from backends.untrusted import one_line

if TYPE_CHECKING:
    from backends.runner import Runner
    from backends.state import PlatformState

STATE_STYLES: dict[LLMState, str] = {
    LLMState.LOADING: "$warning",
    LLMState.GENERATING: "$accent",
    LLMState.READY: "$success",
    LLMState.ERROR: "$error",
}

ACTIVITY_STYLES = {
    "idle": "dim",
    "processing": "$accent",
}


class StatusBar(Static):
    """One line under the prompt."""

    backend: reactive[str] = reactive("")
    activity: reactive[str] = reactive("idle")
    """The runner's state: "processing" while any backend generates, else "idle"."""
    model: reactive[str] = reactive("")
    state: reactive[LLMState] = reactive(LLMState.READY)
    """Where the chat's session stands."""
    speed: reactive[float | None] = reactive(None)
    """Tokens per second of the last reply."""
    usage: reactive[tuple[int, int] | None] = reactive(None)
    """Prompt and completion tokens of the last reply."""
    estimated: reactive[bool] = reactive(False)
    """True when the backend reported no usage and pieces were counted instead."""

    _unfollow: Callable[[], None] | None = None

    def follow(self, runner: Runner) -> None:
        """Show ``runner``'s state in :attr:`activity` from now on, until unmounted."""
        self._stop_following()
        self.activity = runner.state.value
        self._unfollow = runner.add_state_listener(self._runner_changed)

    def _runner_changed(self, state: PlatformState) -> None:
        self.activity = state.value

    def _stop_following(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    def on_unmount(self) -> None:
        self._stop_following()

    def clear_figures(self) -> None:
        """Forget the last reply's speed and token usage (a new reply, chat or error)."""
        self.speed = None
        self.usage = None
        self.estimated = False

    def render(self) -> Content:
        parts: list[Content | str | tuple[str, str]] = [
            (one_line(self.backend) or "no backend", "bold"),
            " ",
            (self.activity, ACTIVITY_STYLES.get(self.activity, "")),
            " · ",
            one_line(self.model) or "no model",
            " · ",
            (self.state.value, STATE_STYLES.get(self.state, "")),
        ]
        approx = "≈" if self.estimated else ""
        if self.speed is not None:
            parts += [" · ", f"{approx}{self.speed:.1f} tok/s"]
        if self.usage is not None:
            prompt, completion = self.usage
            # Counted pieces say nothing of the prompt: only the reply's count is shown.
            counts = f"≈{completion}" if self.estimated else f"{prompt}+{completion}"
            parts += [" · ", f"{counts} tokens"]
        return Content.assemble(*parts)
