"""The Textual application (a minimal chat; onboarding and the full UI grow from here)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Markdown

from backends.errors import LLMError
from backends.runner import Runner
from backends.session import Session
from tui.settings import Settings
from tui.wiring import ChatOptions, make_platform, make_schema


class SpeziChatApp(App[int]):
    TITLE = "spezichat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self, *, settings: Settings, force_onboarding: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.force_onboarding = force_onboarding
        backend = settings.general.backend or "mock"
        self.runner = Runner([make_platform(backend, settings)])
        options = ChatOptions(
            backend=backend,
            model=settings.general.model,
            system_prompts=(settings.general.system_prompt,),
        )
        self.session: Session[Any] = self.runner.session(make_schema(options, settings))

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(id="messages")
        yield Input(placeholder="Ask something and press Enter", id="prompt")
        yield Footer()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        messages = self.query_one("#messages", VerticalScroll)
        await messages.mount(Markdown(f"**You:** {text}"))
        reply = Markdown()
        await messages.mount(reply)
        messages.anchor()
        self.session.context.append_user(text)
        self.generate(reply)

    @work(exclusive=True, group="generate")
    async def generate(self, reply: Markdown) -> None:
        stream = Markdown.get_stream(reply)
        parts: list[str] = []
        try:
            async for piece in self.session.generate():
                parts.append(piece)
                await stream.write(piece)
        except LLMError as error:
            parts.append(f"\n\n**Error:** {error.description} {error.suggestion}")
        finally:
            await stream.stop()
            await reply.update("".join(parts))

    def action_stop(self) -> None:
        self.session.cancel()

    async def on_unmount(self) -> None:
        await self.runner.aclose()
