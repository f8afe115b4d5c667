"""The Textual application: onboarding on first start, then the chat.

The entry point (:mod:`tui.commands.app`) builds the settings, the history store and the
runner and hands them in; the app does no I/O of its own before it runs.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen

from backends.context import Context
from backends.errors import ConfigurationError, LLMError, PlatformNotFoundError
from backends.functions import Tool
from backends.runner import Runner
from backends.session import Platform, Session
from backends.untrusted import one_line, printable
from tui import keymap
from tui.settings import Settings, data_dir
from tui.store import Store
from tui.wiring import ChatOptions, make_platform, make_schema, mcp_manager, offer_tools

if TYPE_CHECKING:
    from backends.mcp.manager import McpManager
    from tui.chat.services import ChatServices

GC_AFTER_REPLY_S = 1.0
"""How long after the last reply the postponed full garbage collection runs."""

QUIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that end the app like Ctrl+Q (``kill``, a closed SSH session or terminal)."""


class SpeziChatApp(App[None]):
    """spezichat's terminal app."""

    TITLE = "spezichat"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("app.help", "app.quit", "app.palette")

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        runner: Runner,
        force_onboarding: bool = False,
        tools: Sequence[Tool] = (),
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.runner = runner
        self.force_onboarding = force_onboarding
        self.tools = tuple(tools)
        self._mcp: McpManager | None = None
        self._mcp_made = False
        self.mcp_errors_told: set[int] = set()
        self._platforms: dict[str, Platform[Any]] = {}
        self._replies = 0
        """Replies streaming now."""
        self._gc_threshold = gc.get_threshold()
        self._gc_postponed = False
        self._signals_before: dict[int, Any] = {}
        """Handlers of QUIT_SIGNALS before the app took them, restored when it ends."""

    # Start ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Building the first screen makes many objects that all stay alive: collecting
        # garbage meanwhile only costs time (50-60 ms of the start-up). See _settled.
        gc.disable()
        self._take_quit_signals()
        table = self.settings.ui.keybindings
        usable, problems = (
            keymap.check_keymap(table)
            if isinstance(table, dict)
            else ({}, ["[ui] keybindings must be a table of binding id = keys"])
        )
        self.set_keymap(usable)
        if problems:
            self.notify(
                "Ignored in [ui.keybindings]: "
                + printable("; ".join(problems))
                + ". Press F1 for the ids.",
                title="Key bindings",
                severity="warning",
                timeout=10,
                markup=False,
            )
        if self.settings.ui.theme in self.available_themes:
            self.theme = self.settings.ui.theme
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for notice in (self.settings.notice, self.store.recovery_notice):
            if notice is not None:
                # Keys and values from the file are the user's text: never markup.
                self.notify(
                    printable(f"{notice.reason}\n{notice.suggestion}"),
                    title=one_line(notice.description),
                    severity="warning",
                    timeout=30,
                    markup=False,
                )
        if self.force_onboarding or not self.settings.onboarded:
            self.start_onboarding()
        else:
            self.open_chat()
        self.call_after_refresh(self._settled)

    def _take_quit_signals(self) -> None:
        """SIGTERM and SIGHUP quit like Ctrl+Q: the reply stops and is saved as stopped,
        the terminal is restored (alternate screen left, mouse reporting off).

        Unhandled, either ends the process at once: the last moments of a streaming reply
        are lost, it is stored as incomplete, and the terminal stays in the app's modes.
        """
        loop = asyncio.get_running_loop()
        for signum in QUIT_SIGNALS:
            before = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, self._quit_on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                return  # no POSIX signals here (Windows), or not the main thread
            self._signals_before[signum] = before

    def _quit_on_signal(self, signum: int) -> None:
        # A second signal while the app winds down ends the process at once.
        self._give_back_signal(signum)
        self.exit(return_code=128 + signum)

    def _give_back_signal(self, signum: int) -> None:
        if signum not in self._signals_before:
            return
        before = self._signals_before.pop(signum)
        asyncio.get_running_loop().remove_signal_handler(signum)
        if before is not None:  # None: set outside Python; the default is back now
            signal.signal(signum, before)

    def _settled(self) -> None:
        """The first screen is drawn: collect garbage again, leaving out what exists now.

        Everything made so far (modules, classes, the first screen) lives as long as the
        app; frozen, a full collection visits only what came later (it took 50-130 ms
        with them, stalling the app).
        """
        gc.enable()
        gc.freeze()

    def start_onboarding(self) -> None:
        from tui.onboarding.flow import OnboardingFlow

        # With a setup in place, Esc on the first step goes back to it unchanged.
        leave = self._onboarding_left if self.settings.onboarded else None
        OnboardingFlow(self, self.settings, self._onboarded, on_cancel=leave).start()

    def _onboarding_left(self) -> None:
        if self.chat_screen is None:  # started with --onboarding
            self.open_chat()

    def _onboarded(self, settings: Settings) -> None:
        old_backend = self.settings.general.backend
        self.settings = settings
        self.save_settings()
        self._drop_platform(old_backend)
        self._drop_platform(settings.general.backend)
        chat = self.chat_screen
        if chat is None:
            self.open_chat()
        else:
            chat.apply_settings()

    def open_chat(self) -> None:
        from tui.screens.chat import ChatScreen

        self.push_screen(ChatScreen(self.chat_services()))

    def chat_services(self) -> ChatServices:
        """What the chat screen uses of the app (it reaches nothing else of it)."""
        from tui.chat.services import ChatServices

        return ChatServices(
            store=self.store,
            runner=self.runner,
            settings=lambda: self.settings,
            make_session=self.make_session,
            prepare_session=self.prepare_session,
            save_settings=self.save_settings,
            set_model=self.set_model,
            export_dir=self.export_dir,
            while_streaming=self.no_full_collections,
        )

    @property
    def chat_screen(self) -> Any:
        from tui.screens.chat import ChatScreen

        return next((s for s in self.screen_stack if isinstance(s, ChatScreen)), None)

    @contextmanager
    def no_full_collections(self) -> Iterator[None]:
        """While a reply streams: no full garbage collection (the app would stall for it).

        Young objects are still collected as usual. The postponed full collection runs
        when no reply has streamed for a second (the user reads), then the collector's
        usual thresholds apply again.
        """
        if not self._gc_postponed:
            young, middle, _old = gc.get_threshold()
            gc.set_threshold(young, middle, 1_000_000)
            self._gc_postponed = True
        self._replies += 1
        try:
            yield
        finally:
            self._replies -= 1
            if self._replies == 0:
                self.set_timer(GC_AFTER_REPLY_S, self._collect_when_quiet)

    def _collect_when_quiet(self) -> None:
        if self._replies == 0 and self._gc_postponed:
            gc.collect()
            gc.set_threshold(*self._gc_threshold)
            self._gc_postponed = False

    # Settings ---------------------------------------------------------------------------
    def save_settings(self) -> bool:
        try:
            self.settings.save()
        except (OSError, LLMError) as exc:
            self.notify(
                printable(f"The settings could not be saved: {exc}. They apply until you quit."),
                severity="error",
                timeout=10,
                markup=False,
            )
            return False
        return True

    def _theme_changed(self, theme: Any) -> None:
        name = getattr(theme, "name", None)
        if isinstance(name, str) and name != self.settings.ui.theme:
            self.settings.ui.theme = name
            self.save_settings()

    def set_model(self, model: str) -> None:
        """Use ``model`` from the next reply on, and remember it."""
        self.settings.general.model = model
        self.save_settings()
        chat = self.chat_screen
        if chat is not None:
            chat.apply_settings()
        # The id as typed: ``qwen2.5[instruct]`` or ``evil[/]`` is text, never markup.
        self.notify(f"Model: {one_line(model)}", timeout=3, markup=False)

    def export_dir(self) -> Path:
        configured = self.settings.ui.export_dir
        return Path(configured).expanduser() if configured else data_dir() / "exports"

    # Backends ---------------------------------------------------------------------------
    def chat_options(self) -> ChatOptions:
        """What the next session asks for; values from a hand-edited config are checked."""
        general = self.settings.general
        prompt = str(general.system_prompt or "").strip()
        max_tokens = _setting_number(general.max_tokens, "max_tokens", 1, None)
        return ChatOptions(
            backend=str(general.backend),
            model=str(general.model),
            system_prompts=(prompt,) if prompt else (),
            temperature=_setting_number(general.temperature, "temperature", 0, 2),
            top_p=_setting_number(general.top_p, "top_p", 0, 1),
            max_tokens=None if max_tokens is None else int(max_tokens),
            tools=offer_tools(self.tools, self._mcp),
        )

    def platform(self) -> Platform[Any]:
        """The platform of the configured backend, created on first use."""
        backend = self.settings.general.backend
        platform = self._platforms.get(backend)
        if platform is None:
            platform = make_platform(backend, self.settings)
            self._platforms[backend] = platform
            self.runner.register(platform)
        return platform

    def make_session(self, context: Context | None = None) -> Session[Any]:
        """A session for the configured backend and model, continuing ``context``."""
        schema = make_schema(self.chat_options(), self.settings)
        platform = self.platform()
        if not platform.accepts(schema):
            raise PlatformNotFoundError(
                reason=f"The {platform.name} backend cannot run {type(schema).__name__}."
            )
        return self.runner.session(schema, context)

    def _drop_platform(self, backend: str) -> None:
        """Forget a platform so the next session is built from the new settings."""
        platform = self._platforms.pop(backend, None)
        if platform is not None:
            self.run_worker(platform.aclose(), group="aclose")

    async def on_unmount(self) -> None:
        gc.enable()  # should the app end before its first screen was drawn
        for signum in list(self._signals_before):
            self._give_back_signal(signum)
        await self.runner.aclose()
        if self._mcp is not None:
            await self._mcp.aclose()  # ends every MCP server the app started

    # Commands ---------------------------------------------------------------------------
    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.settings.ui.keybindings))

    @property
    def mcp(self) -> McpManager | None:
        """The MCP tool servers, read from the settings on first use (not at start-up);
        they start when the first reply needs them."""
        if not self._mcp_made:
            self._mcp_made = True
            self._mcp = mcp_manager(self.settings)
        return self._mcp

    async def prepare_session(self, session: Session[Any]) -> None:
        """Before a reply: the MCP servers started and their tools offered."""
        from tui.screens.mcp import prepare_session

        await prepare_session(self, session)

    def action_mcp_servers(self) -> None:
        from tui.screens.mcp import McpScreen

        self.push_screen(McpScreen(self.mcp, tuple(tool.name for tool in self.tools)))

    def action_local_models(self) -> None:
        from tui.screens.local_models import open_local_models

        open_local_models(self)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # spezichat's own commands only: Textual's "Keys" panel squeezes the chat (F1
        # lists every key), "Maximize" and "Screenshot" are for developing apps.
        yield SystemCommand("Theme", "Change the colour theme", self.action_change_theme)
        yield SystemCommand("Quit", "Quit spezichat", self.action_quit)
        yield SystemCommand("Help", "All key bindings and what they do", self.action_help)
        yield SystemCommand(
            "MCP servers", "Tool servers: state, tools, restart, disable", self.action_mcp_servers
        )
        from tui.screens.chat import ChatScreen

        if isinstance(screen, ChatScreen):
            commands = (
                (
                    "Switch model",
                    "Choose another model of this backend",
                    screen.action_switch_model,
                ),
                (
                    "Settings",
                    "System prompt, temperature, top_p, max tokens, model, theme",
                    screen.action_settings,
                ),
                ("New chat", "Start a new conversation", screen.action_new_chat),
                ("Search", "Search every conversation", screen.action_search),
                ("Export", "Save this conversation as Markdown and JSON", screen.action_export),
                ("Retry", "Answer the last message again", screen.action_retry),
                (
                    "Toggle sidebar",
                    "Show or hide the conversation list",
                    screen.action_toggle_sidebar,
                ),
                ("Change backend", "Run the onboarding again", self.start_onboarding),
                (
                    "On-device models",
                    "Download, resume, delete and choose GGUF models",
                    self.action_local_models,
                ),
            )
            for title, help_text, callback in commands:
                yield SystemCommand(title, help_text, callback)


def _setting_number(value: object, key: str, low: float, high: float | None) -> float | None:
    """A number from ``[general]``, or a ConfigurationError that names the bad line."""
    if value is None:
        return None
    limits = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"The setting {key} is not a number.",
            reason=f"config.toml has [general] {key} = {value!r}.",
            suggestion=f"Set a number {limits} in the settings (F2), or delete the line.",
        )
    if value < low or (high is not None and value > high):
        raise ConfigurationError(
            f"The setting {key} is out of range.",
            reason=f"config.toml has [general] {key} = {value!r}.",
            suggestion=f"Set a number {limits} in the settings (F2), or delete the line.",
        )
    return float(value)
