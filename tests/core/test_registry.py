"""The backend registry: one descriptor is all a backend needs (issue #14).

The "echo" backend below exists only in this file: a descriptor around the mock platform,
registered through the public API. It shows up in the onboarding's backend choice, in
``spezichat ask`` (with an option of its own), in ``spezichat models`` and in the warm-up,
without a line of it anywhere else.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.app import ComposeResult
from textual.widgets import Button, OptionList

from backends.mock import MockPlatform, MockSchema
from backends.runner import Runner
from tests.tui.helpers import SIZE, replies, send, wait_until
from tui.app import SpeziChatApp
from tui.backends import REGISTRY, AskOptions, Backend
from tui.cli import main
from tui.onboarding.flow import OnboardingStep, load_branches
from tui.onboarding.screens import BackendChoiceStep, WelcomeStep
from tui.screens.chat import ChatScreen
from tui.settings import Settings
from tui.store import Store
from tui.warmup import MODULES, warm_up
from tui.wiring import ChatOptions, make_platform, make_schema

MISSING = "tests_registry_echo_module_that_does_not_exist"
"""A warm-up module of the echo backend: ``warm_up`` reports it failed, so it was tried."""


def _platform(settings: Settings, overrides: Mapping[str, Any]) -> MockPlatform:
    return MockPlatform()


def _schema(options: ChatOptions, settings: Settings, tool_timeout: float) -> MockSchema:
    return MockSchema(
        model=options.model or "echo",
        system_prompts=options.system_prompts,
        functions=options.tools,
        tool_timeout=tool_timeout,
        echo=True,
        delay=float(options.overrides.get("echo_delay", 0.0)),
    )


async def _models(settings: Settings) -> list[tuple[str, str]]:
    return [("echo", "repeats your last message"), ("echo-2", "")]


class EchoStep(OnboardingStep):
    TITLE = "The echo model"
    INTRO = "It repeats what you write."

    def compose_step(self) -> ComposeResult:
        yield Button("Use it", id="use")

    def on_mount(self) -> None:
        self.query_one("#use", Button).focus()

    def on_button_pressed(self) -> None:
        self.state.settings.general.backend = "echo"
        self.state.settings.general.model = "echo"
        self.flow.advance()


def _add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("echo (--backend echo)")
    group.add_argument("--echo-delay", type=float, metavar="S", help="seconds between words")


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    delay = getattr(args, "echo_delay", None)
    return {} if delay is None else {"echo_delay": delay}


ECHO = Backend(
    id="echo",
    label="Echo",
    summary="Repeats what you write (a test backend).",
    platform=_platform,
    schema=_schema,
    onboarding=lambda: (EchoStep,),
    warm_up=("json", MISSING),
    list_models=_models,
    ask_options=AskOptions(add=_add_options, read=_read_options, exclusive=True),
)


@pytest.fixture
def echo() -> Iterator[Backend]:
    with REGISTRY.registered(ECHO) as backend:
        yield backend


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.TextIOWrapper]:
    """An empty, piped standard input for the in-process ``ask`` (pytest's cannot be read)."""
    piped = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", piped)
    yield piped


async def test_echo_is_offered_in_the_onboarding_and_then_chats(
    echo: Backend, tmp_path: Path
) -> None:
    with Store(tmp_path / "history.db") as store:
        app = SpeziChatApp(settings=Settings(), store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, WelcomeStep)
            await pilot.press("enter")
            assert isinstance(app.screen, BackendChoiceStep)
            options = app.screen.query_one(OptionList)
            ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
            assert ids == ["openai", "fog", "local", "echo"]  # mock has no setup steps
            echo_option = options.get_option_at_index(ids.index("echo"))
            assert "Echo" in str(echo_option.prompt) and not echo_option.disabled
            options.highlighted = ids.index("echo")
            await pilot.press("enter")
            assert isinstance(app.screen, EchoStep)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
            assert app.settings.general.backend == "echo"
            await send(pilot, "hello from the echo test")
            await wait_until(
                pilot,
                lambda: any("hello from the echo test" in r.text for r in replies(pilot)),
                "the echoed reply",
            )


def test_ask_uses_echo_and_its_own_option(
    echo: Backend, stdin: io.TextIOWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "--backend", "echo", "--echo-delay", "0", "say", "this", "back"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "say this back"
    assert captured.err == ""


def test_an_exclusive_option_of_echo_is_refused_for_another_backend(
    echo: Backend, stdin: io.TextIOWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "--backend", "mock", "--echo-delay", "0", "hi"]) == 2
    captured = capsys.readouterr()
    assert "--echo-delay applies to the echo backend only" in captured.err
    assert captured.out == ""


def test_ask_help_shows_the_options_of_every_backend(
    echo: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    out = capsys.readouterr().out
    for option in ("--echo-delay", "--chat-format", "--ca-cert"):
        assert option in out


def test_models_lists_the_echo_models(echo: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--backend", "echo", "--long"]) == 0
    assert capsys.readouterr().out == "echo\trepeats your last message\necho-2\n"


def test_warm_up_imports_the_echo_modules(echo: Backend) -> None:
    assert MODULES["echo"] == ("json", MISSING)
    assert warm_up("echo", languages=()) == [MISSING]


def test_the_wiring_builds_echo(echo: Backend) -> None:
    settings = Settings()
    assert isinstance(make_platform("echo", settings), MockPlatform)
    schema = make_schema(ChatOptions(backend="echo", overrides={"echo_delay": 0.5}), settings)
    assert isinstance(schema, MockSchema)
    assert schema.echo and schema.delay == 0.5 and schema.model == "echo"


def test_registration_ends_with_the_block(
    stdin: io.TextIOWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    with REGISTRY.registered(ECHO):
        assert "echo" in REGISTRY
        with pytest.raises(ValueError, match="registered already"):
            REGISTRY.register(ECHO)
    assert "echo" not in REGISTRY
    assert "echo" not in [branch.id for branch in load_branches()]
    assert main(["ask", "--backend", "echo", "hi"]) == 2
    assert "unknown backend 'echo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # and its option is gone with it
        main(["ask", "--backend", "mock", "--echo-delay", "0", "hi"])


def test_the_built_in_descriptors_are_consistent() -> None:
    assert list(REGISTRY) == ["openai", "fog", "local", "mock"]
    assert REGISTRY.default in REGISTRY
    sections = Settings.sections()
    for backend_id, backend in REGISTRY.items():
        assert backend.id == backend_id
        assert backend.label and backend.summary
        assert not backend.section or backend.section in sections
        for step in backend.onboarding() if backend.onboarding else ():
            assert issubclass(step, OnboardingStep)  # type: ignore[arg-type]
    # The onboarding modules' own branch() is the registered one.
    from tui.onboarding import fog, local, openai

    for module in (openai, fog, local):
        branch = module.branch()
        assert branch.title == REGISTRY[branch.id].label
        assert branch.steps == REGISTRY[branch.id].onboarding()  # type: ignore[misc]


def test_the_descriptors_load_no_heavy_library() -> None:
    """`spezichat --help` loads every descriptor: none may import its backend yet."""
    probe = (
        "import sys\nfrom tui.backends import REGISTRY\n"
        "backends = list(REGISTRY.values())\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    heavy = {"textual", "httpx", "zeroconf", "llama_cpp", "rich", "huggingface_hub", "mcp"}
    assert not loaded & heavy
    assert {"tui.backends.openai", "tui.backends.mock"} <= set(result.stdout.split())
