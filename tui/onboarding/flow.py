"""The onboarding framework: a sequence of step screens that ends by producing settings.

The flow always starts with the welcome screen and the backend choice. Each backend is a
:class:`Branch`: a title, one line of explanation, a check that says whether it can work
on this machine, and the list of step screens that configure it; by default one per
registered backend with setup steps (:mod:`tui.backends`, :func:`load_branches`). Steps share one
:class:`OnboardingState` (a working copy of the settings plus a scratch dictionary) and
call :meth:`OnboardingFlow.advance` when they are done; Esc goes back one step. When the
last step of the chosen branch advances, the flow checks that a backend and a model were
chosen and hands the settings to the app, which saves them and opens the chat.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.visual import VisualType
from textual.widgets import Footer, Static

from tui import keymap
from tui.backends import REGISTRY, Backend, always_available
from tui.settings import Settings

if TYPE_CHECKING:
    from textual.app import App


@dataclass
class OnboardingState:
    """What the steps have gathered so far."""

    settings: Settings
    """A working copy of the settings; saved only when the flow finishes."""
    backend: str = ""
    """The id of the chosen branch."""
    values: dict[str, Any] = field(default_factory=dict)
    """Scratch space for the steps of a branch (for example the model list fetched with
    the API key). Keys are prefixed with the branch id: ``"openai.models"``."""


StepFactory = Callable[["OnboardingFlow"], "OnboardingStep"]
"""Creates one step screen; usually the step class itself."""


@dataclass(frozen=True)
class Branch:
    """One backend's part of the onboarding."""

    id: str
    """The backend name written to ``settings.general.backend`` ("openai")."""
    title: str
    """Shown in the backend choice, for example "OpenAI"."""
    summary: str
    """One line of explanation under the title."""
    steps: tuple[StepFactory, ...]
    """The step screens, in order. The last one must leave a backend and model set."""
    unavailable: Callable[[], str | None] = always_available
    """Returns why this branch cannot work here (shown, choice disabled), or None. Must be
    fast and do no network I/O: it runs while the backend choice is drawn."""


def branch_of(backend: Backend) -> Branch:
    """The onboarding branch of a backend that has setup steps."""
    if backend.onboarding is None:
        raise ValueError(f"the {backend.id!r} backend has no setup steps")
    return Branch(
        id=backend.id,
        title=backend.label,
        summary=backend.summary,
        steps=backend.onboarding(),
        unavailable=backend.unavailable,
    )


def load_branches() -> list[Branch]:
    """One branch per registered backend with setup steps, in the registry's order."""
    return [branch_of(backend) for backend in REGISTRY.values() if backend.onboarding is not None]


class StatusLine(Static):
    """A step's status under its field (a key check, an error): when it grows, it scrolls
    itself into view; on a small terminal an error would stay out of sight until Tab.
    Empty, it takes no row."""

    def __init__(self, *, id: str) -> None:
        super().__init__("", id=id)
        self.display = False

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        self.display = bool(str(content))
        super().update(content, layout=layout)

    def on_resize(self) -> None:
        if self.size.height > 1:
            self.scroll_visible(animate=False)


class OnboardingStep(Screen[None]):
    """Base class of every onboarding screen.

    Subclasses implement :meth:`compose_step` and call ``self.flow.advance()`` when the
    user is done. ``TITLE`` and ``INTRO`` are drawn above the step's widgets.
    """

    TITLE: ClassVar[str] = ""
    INTRO: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("onboarding.back")
    DEFAULT_CLASSES = "onboarding"

    def __init__(self, flow: OnboardingFlow) -> None:
        super().__init__()
        self.flow = flow
        # Below 20 rows (``-short``) the card drops its padding and margins (app.tcss).
        self.VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]

    @property
    def state(self) -> OnboardingState:
        return self.flow.state

    def compose(self) -> ComposeResult:
        with Vertical(classes="onboarding-card"):
            # Plain text: "[fog]" in a text is a config section, not markup.
            yield Static(Content(self.TITLE), classes="onboarding-title")
            if self.INTRO:
                yield Static(Content(self.INTRO), classes="onboarding-intro")
            yield from self.compose_step()
        yield Footer()

    def compose_step(self) -> ComposeResult:
        yield from ()

    @classmethod
    def skip(cls, state: OnboardingState) -> bool:
        """True when this step has nothing to ask (for example a model already here).

        Skipped steps are passed over going forward and going back.
        """
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            # On the first step Esc leaves the setup (or says how, on the first start).
            return self.flow.current is self
        return True

    def action_back(self) -> None:
        self.flow.back(self)


class OnboardingFlow:
    """Drives the step screens of one onboarding run."""

    def __init__(
        self,
        app: App[Any],
        settings: Settings,
        on_finish: Callable[[Settings], object],
        *,
        branches: Iterable[Branch] | None = None,
        on_cancel: Callable[[], object] | None = None,
    ) -> None:
        """``on_cancel``: runs when the user leaves with Esc on the first step, the
        settings unchanged; ``None`` when there is nothing to go back to (first start)."""
        self.app = app
        self.state = OnboardingState(settings=copy.deepcopy(settings))
        self.branches = list(branches) if branches is not None else load_branches()
        self.on_finish = on_finish
        self.on_cancel = on_cancel
        self._stack: list[OnboardingStep] = []
        self._positions: list[int] = []

    # The sequence -------------------------------------------------------------------
    def branch(self, branch_id: str | None = None) -> Branch | None:
        wanted = branch_id or self.state.backend
        return next((b for b in self.branches if b.id == wanted), None)

    def sequence(self) -> list[StepFactory]:
        from tui.onboarding.screens import BackendChoiceStep, WelcomeStep

        steps: list[StepFactory] = [WelcomeStep, BackendChoiceStep]
        chosen = self.branch()
        if chosen is not None:
            steps.extend(chosen.steps)
        return steps

    @property
    def current(self) -> OnboardingStep | None:
        return self._stack[-1] if self._stack else None

    # Moving ---------------------------------------------------------------------------
    def start(self) -> None:
        self._push(0)

    def choose(self, branch_id: str) -> None:
        """Record the backend choice and go to its first step."""
        if self.branch(branch_id) is None:
            raise KeyError(branch_id)
        self.state.backend = branch_id
        self.advance()

    def advance(self) -> None:
        """Go to the next step that has something to ask, or finish after the last one."""
        sequence = self.sequence()
        position = self._positions[-1] + 1 if self._positions else 0
        while position < len(sequence) and _skips(sequence[position], self.state):
            position += 1
        if position < len(sequence):
            self._push(position)
        else:
            self.finish()

    def can_go_back(self, step: OnboardingStep) -> bool:
        return len(self._stack) > 1 and self._stack[-1] is step

    def back(self, step: OnboardingStep) -> None:
        if self.current is not step:
            return
        if not self.can_go_back(step):
            self.cancel()
            return
        self._stack.pop()
        self._positions.pop()
        self.app.pop_screen()

    def cancel(self) -> None:
        """Leave the setup unchanged (Esc on its first step).

        With a setup in place the app goes back to it; on the first start there is none
        to go back to, and a notification says how to quit instead.
        """
        if self.on_cancel is None:
            self.app.notify(
                "spezichat needs a model before it can chat: press Enter to begin the "
                f"setup, or {self.quit_key()} to quit.",
                title="Setup",
                timeout=8,
                markup=False,
            )
            return
        self._close()
        self.on_cancel()

    def finish(self) -> None:
        settings = self.state.settings
        if not settings.onboarded:
            raise RuntimeError(
                f"onboarding branch {self.state.backend!r} ended without a backend and model"
            )
        self._close()
        self.on_finish(settings)

    def _close(self) -> None:
        for _ in self._stack:
            self.app.pop_screen()
        self._stack.clear()
        self._positions.clear()

    def quit_key(self) -> str:
        """The key that quits now (it may be remapped), written like "Ctrl+Q"."""
        step = self.current
        bindings = step.active_bindings.values() if step is not None else ()
        keys = [b.binding.key for b in bindings if b.binding.id == "app.quit"]
        if not keys:
            return "Ctrl+Q"
        return "+".join(
            part.upper() if len(part) == 1 else part.title() for part in keys[0].split("+")
        )

    def _push(self, position: int) -> None:
        step = self.sequence()[position](self)
        self._stack.append(step)
        self._positions.append(position)
        self.app.push_screen(step)


def _skips(factory: StepFactory, state: OnboardingState) -> bool:
    skip = getattr(factory, "skip", None)
    return bool(skip(state)) if callable(skip) else False
