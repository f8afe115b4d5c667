"""The two steps every onboarding starts with: welcome and backend choice."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from tui.onboarding.flow import OnboardingStep


class WelcomeStep(OnboardingStep):
    """What spezichat is, and one button to begin."""

    TITLE = "Welcome to spezichat"
    INTRO = (
        "Chat with language models from your terminal: OpenAI's models, a fog node on "
        "your local network, or a model that runs on this computer.\n\n"
        "The next steps pick where your model runs. Everything works with the keyboard: "
        "Tab moves between fields, the arrow keys move in lists, Enter confirms and Esc "
        "goes back. You can run this setup again at any time with "
        "`spezichat --onboarding`."
    )

    def compose_step(self) -> ComposeResult:
        leave = (
            "Esc leaves this setup and keeps your current one."
            if self.flow.on_cancel is not None
            else f"{self.flow.quit_key()} quits."
        )
        yield Static(
            "No account? Choose the on-device model: it works offline, right away. " + leave,
            classes="onboarding-hint",
        )
        yield Button("Get started", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#start", Button).focus()

    @on(Button.Pressed, "#start")
    def start(self) -> None:
        self.flow.advance()


class BackendChoiceStep(OnboardingStep):
    """Where the model runs: one option per registered branch."""

    TITLE = "Where should your model run?"
    INTRO = "Choose with the arrow keys and press Enter."

    def compose_step(self) -> ComposeResult:
        options: list[Option] = []
        for branch in self.flow.branches:
            reason = branch.unavailable()
            prompt = Content.assemble(
                (branch.title, "bold"), "\n", (branch.summary, "dim" if reason else "")
            )
            if reason:
                prompt = prompt + Content.assemble("\n", (f"Not available: {reason}", "italic"))
            options.append(Option(prompt, id=branch.id, disabled=reason is not None))
        yield OptionList(*options, id="backends")

    def on_mount(self) -> None:
        options = self.query_one("#backends", OptionList)
        chosen = self.state.backend or self.state.settings.general.backend
        enabled = [
            index
            for index in range(options.option_count)
            if not options.get_option_at_index(index).disabled
        ]
        preferred = [i for i in enabled if options.get_option_at_index(i).id == chosen]
        if preferred or enabled:
            options.highlighted = (preferred or enabled)[0]
        options.focus()

    @on(OptionList.OptionSelected, "#backends")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.flow.choose(event.option.id)
