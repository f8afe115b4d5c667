"""The library speaks for itself; the command line and the app give their own advice.

The backends' errors suggest what a library user can do, naming the library's own
settings; :mod:`tui.advice` turns them into the words of the surface that shows them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

import backends
from backends.errors import LLMError
from backends.fog.errors import FogCertificateError, FogIdleTimeoutError, FogNodeNotFoundError
from backends.fog.plain_http import not_allowed_error
from backends.local.errors import ModelNotFoundError
from backends.openai.errors import ConnectivityError, InvalidAPIKeyError, MissingAPIKeyError
from tests.support.openai_server import OpenAITestServer, openai_server
from tests.tui.helpers import items, send
from tui.advice import APP_SETTINGS, CLI_SETTINGS, app_advice, cli_advice
from tui.app import SpeziChatApp
from tui.cli import COMMANDS, build_parser
from tui.settings import Settings
from tui.store import Store
from tui.widgets.messages import ErrorItem

__all__ = ["openai_server"]

REPO = Path(__file__).resolve().parents[2]
BACKENDS = REPO / "backends"
WRONG_KEY = "sk-not-the-right-key"
SIZE = (100, 40)


# The library's texts ----------------------------------------------------------------------
def _cli_flags() -> set[str]:
    """Every long option of ``spezichat`` and its subcommands."""
    flags: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:  # argparse has no public list of its actions
            flags.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    flags.discard("--help")
    return flags


SURFACE_WORDS = re.compile(
    rf"spezichat (?:{'|'.join(COMMANDS)})\b|`spezichat|\[(fog|openai|local|general|ui|mcp)[\].]"
    r"|config\.toml|key set|\bF\d{1,2}\b|Ctrl\+|command palette|screen|onboarding"
    r"|in the settings"
)
"""What belongs to spezichat's surfaces: commands, config sections and files, keys, screens."""


def _surface_words(text: str, flags: set[str]) -> list[str]:
    found = [m.group(0) for m in SURFACE_WORDS.finditer(text)]
    found += [f for f in flags if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]
    return found


def _text_of(node: ast.AST, constants: dict[str, str]) -> str:
    """The literal text of an expression: its string parts and the constants it names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id, "")
    return " ".join(_text_of(child, constants) for child in ast.iter_child_nodes(node))


def _suggestions() -> Iterator[tuple[str, str]]:
    """``(where, text)`` of every suggestion written in ``backends``: ``suggestion=``
    arguments, class-level ``suggestion =`` and the module constants they use."""
    for path in sorted(BACKENDS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: _text_of(node.value, {})
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name) and target.id.isupper()
        }
        for node in ast.walk(tree):
            value: ast.AST | None = None
            if (isinstance(node, ast.keyword) and node.arg == "suggestion") or (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "suggestion" for t in node.targets)
            ):
                value = node.value
            if value is not None:
                where = f"{path.relative_to(REPO)}:{node.lineno}"  # type: ignore[attr-defined]
                yield where, _text_of(value, constants)


def test_the_scan_finds_the_suggestions_and_the_words_it_looks_for() -> None:
    found = dict(_suggestions())
    assert len(found) > 100
    assert any("`FogConfig.ca_cert`" in text for text in found.values())  # via CA_HINT
    flags = _cli_flags()
    assert {"--ca-cert", "--tools", "--allow-http-node", "--port"} <= flags
    old = (
        "Store one with `spezichat key set`",
        "raise [fog] idle_timeout in the settings",
        "pass it with --ca-cert",
        "(local.n_ctx in config.toml)",
        "Press F3 to pick a model",
        "Restart it on the MCP servers screen",
    )
    for text in old:
        assert _surface_words(text, flags), text
    assert not _surface_words("pip install --force-reinstall spezichat", flags)


def test_no_suggestion_of_the_library_names_a_flag_command_key_or_screen() -> None:
    flags = _cli_flags()
    offending = {
        where: words for where, text in _suggestions() if (words := _surface_words(text, flags))
    }
    assert offending == {}


def _error_classes() -> list[type[LLMError]]:
    for module in pkgutil.walk_packages(backends.__path__, "backends."):
        importlib.import_module(module.name)
    classes: list[type[LLMError]] = []
    todo = [LLMError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("backends"):
            classes.append(cls)
        todo.extend(cls.__subclasses__())
    return classes


def test_every_error_class_of_the_library_speaks_for_itself() -> None:
    flags = _cli_flags()
    classes = _error_classes()
    assert len(classes) > 40
    offending = {
        f"{cls.__module__}.{cls.__qualname__}.{field}": words
        for cls in classes
        for field in ("description", "reason", "suggestion")
        if (words := _surface_words(getattr(cls, field), flags))
    }
    assert offending == {}


def test_every_library_name_a_suggestion_uses_has_the_surfaces_words() -> None:
    """A backticked library name (`FogConfig.idle_timeout`, `create_api_key(...)`) in a
    suggestion is translated on the command line; the app translates all but the node
    commands, which only the command line shows. No table entry is stale."""
    named = re.compile(r"`([A-Za-z_]\w*(?:\.\w+)?(?:\([^`]*\))?)`")
    used = {
        name
        for _where, text in _suggestions()
        for name in named.findall(text)
        if "." in name or "(" in name or name[0].isupper() or name.startswith(("load_", "create_"))
    }
    assert "FogConfig.idle_timeout" in used and "create_node_certificates" in used
    assert sorted(used - set(CLI_SETTINGS)) == []
    node_side = {n for n in used if n.startswith(("ServeOptions.", "FogAdvertiser."))}
    assert sorted(used - node_side - set(APP_SETTINGS)) == []
    assert sorted(set(CLI_SETTINGS) - used) == []
    assert sorted(set(APP_SETTINGS) - used) == []


# The surfaces' advice -------------------------------------------------------------------------
def test_the_command_line_names_its_flags_commands_and_config_keys() -> None:
    assert "spezichat key set" in cli_advice(InvalidAPIKeyError())
    assert "spezichat key set" in cli_advice(MissingAPIKeyError())
    assert "--ca-cert" in cli_advice(FogCertificateError())
    assert "spezichat download qwen" in cli_advice(ModelNotFoundError(model="qwen"))
    idle = cli_advice(FogIdleTimeoutError())
    assert "idle_timeout in the [fog] section of config.toml" in idle and "`" not in idle
    insecure = not_allowed_error("lab", "http://10.0.0.5:8080")
    assert "--allow-http-node 10.0.0.5:8080" in cli_advice(insecure)
    # A suggestion made for the case at hand stays, with the library's names translated.
    specific = ConnectivityError(suggestion="Check the proxy, then `OpenAIPlatform.base_url`.")
    assert cli_advice(specific) == (
        "Check the proxy, then base_url in the [openai] section of config.toml."
    )
    assert cli_advice(LLMError(suggestion="Try again.")) == "Try again."


def test_the_app_names_its_screens_and_the_users_keys() -> None:
    remapped = {"app.palette": "ctrl+k", "chat.model": "f6", "chat.retry": "ctrl+g"}
    key = app_advice(InvalidAPIKeyError(), remapped)
    assert "Change backend" in key and "Ctrl+K" in key and "spezichat key set" not in key
    assert "Ctrl+P" in app_advice(InvalidAPIKeyError())  # the default key
    local = app_advice(ModelNotFoundError(model="qwen"), remapped)
    assert "On-device models" in local and "F6" in local and "spezichat download" not in local
    nodes = app_advice(FogNodeNotFoundError(), remapped)
    assert "Ctrl+G" in nodes and "spezichat discover" not in nodes
    assert "--ca-cert" not in app_advice(FogCertificateError())
    # Braces in a server's words are text, never a template.
    odd = LLMError(suggestion="The server said {palette} `{x}`.")
    assert app_advice(odd, remapped) == odd.suggestion == cli_advice(odd)


# The same error on both surfaces --------------------------------------------------------------
@pytest.fixture
def wrong_key(openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", WRONG_KEY)
    return WRONG_KEY


async def test_the_app_says_how_to_change_the_key_in_the_app(
    openai_server: OpenAITestServer, wrong_key: str, tmp_path: Path
) -> None:
    from backends.runner import Runner

    settings = Settings()
    settings.general.backend = "openai"
    settings.general.model = "gpt-test"
    settings.ui.keybindings = {"app.palette": "ctrl+k"}
    with Store(tmp_path / "history.db") as store:
        app = SpeziChatApp(settings=settings, store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "hello")
            [error] = [item for item in items(pilot) if isinstance(item, ErrorItem)]
            assert isinstance(error.error, InvalidAPIKeyError)
            shown = str(error.query_one(".suggestion", Static).render())
            assert "Change backend" in shown and "Ctrl+K" in shown
            assert "spezichat key set" not in shown and "api_key" not in shown
            assert "Change backend" in error.copy_text()
    assert openai_server.requests and openai_server.requests[-1].bearer == wrong_key


def test_the_command_line_says_spezichat_key_set(
    openai_server: OpenAITestServer, wrong_key: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui", "ask", "--backend", "openai", "--model", "gpt-test", "hi"],
        cwd=REPO,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {InvalidAPIKeyError.description}"
    assert lines[2].startswith("  fix: ") and "spezichat key set" in lines[2]
    assert "Change backend" not in result.stderr and "api_key" not in result.stderr


# Onboarding: correct the key only when the key is what failed ----------------------------------
async def _key_error(key: str, tmp_path: Path) -> str:
    """The error the onboarding's key step shows for ``key`` (OPENAI_BASE_URL is set)."""
    from backends.runner import Runner
    from tests.tui.helpers import type_text, wait_until
    from tui.onboarding.openai import ApiKeyStep

    with Store(tmp_path / "history.db") as store:
        app = SpeziChatApp(settings=Settings(), store=store, runner=Runner())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter", "enter")  # welcome, OpenAI
            assert isinstance(app.screen, ApiKeyStep)
            await type_text(pilot, key)
            await pilot.press("enter")
            status = app.screen.query_one("#key-status", Static)
            await wait_until(pilot, lambda: "error" in status.classes, "the key error")
            return str(status.render())


async def test_onboarding_asks_to_correct_an_invalid_key(
    openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    shown = await _key_error(WRONG_KEY, tmp_path)
    assert InvalidAPIKeyError.description in shown
    assert "correct it above and press Enter" in shown
    assert "spezichat key set" not in shown and "api_key" not in shown


async def test_onboarding_says_to_check_the_network_when_the_server_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    shown = await _key_error(WRONG_KEY, tmp_path)
    assert "network connection" in shown and "base URL" in shown
    assert "OPENAI_BASE_URL" in shown and "Press Enter to try again" in shown
    assert "Correct the key" not in shown and "correct it above" not in shown
    assert "spezichat key set" not in shown and "`" not in shown
