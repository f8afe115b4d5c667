"""config.toml as the user wrote it: saving keeps their text, reading checks every value.

Real files under the test's own XDG config directory; the CLI runs as a subprocess.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import ConfigurationError
from backends.mock import DEFAULT_REPLY
from tui.settings import Settings, config_path

ENTRY = [sys.executable, "-m", "tui"]

USER_FILE = """\
# My spezichat settings -- edited by hand, please keep my notes.
[general]
backend = "mock"   # the offline one
model = "mock"
# temperature = 0.5   (try this some day)
tool_timeout = 30     # an int where a float is expected is fine
my_own_note = "kept"

[ui]
theme = "nord"  # dark and calm
show_sidebar = true # I like the list
#export_dir = "~/chats"

[ui.keybindings]
"chat.new" = "ctrl+t"

[plugins]   # not spezichat's, but mine
colour = "blue"
"""

WRONG_TYPES = [
    ("openai", "timeout", '"abc"', 'config.toml: [openai] timeout must be a number (got "abc")'),
    ("openai", "base_url", "5", "config.toml: [openai] base_url must be a string (got 5)"),
    ("ui", "export_dir", "5", "config.toml: [ui] export_dir must be a string (got 5)"),
    (
        "fog",
        "manual_nodes",
        '"https://10.0.0.5:443"',
        'config.toml: [fog] manual_nodes must be a list of strings (got "https://10.0.0.5:443")',
    ),
    (
        "openai",
        "test_model_access",
        '"no"',
        'config.toml: [openai] test_model_access must be true or false (got "no")',
    ),
    (
        "general",
        "system_prompt",
        "5",
        "config.toml: [general] system_prompt must be a string (got 5)",
    ),
]
"""Section, key, the TOML value written, the exact message."""


def write_config(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def with_line(section: str, line: str) -> str:
    """A valid mock config with ``line`` in ``[section]``."""
    body = {"general": 'backend = "mock"\nmodel = "mock"\n'}
    body[section] = body.get(section, "") + line + "\n"
    return "".join(f"[{name}]\n{text}\n" for name, text in body.items())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


# Saving keeps the user's text -------------------------------------------------------------
def test_changing_the_theme_rewrites_only_that_line() -> None:
    path = write_config(USER_FILE)
    settings = Settings.load()
    settings.ui.theme = "gruvbox"
    settings.save()
    assert path.read_text(encoding="utf-8") == USER_FILE.replace(
        'theme = "nord"  # dark and calm', 'theme = "gruvbox"  # dark and calm'
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_toggling_the_sidebar_twice_gives_back_the_same_bytes() -> None:
    path = write_config(USER_FILE)
    settings = Settings.load()
    settings.ui.show_sidebar = False
    settings.save()
    assert path.read_text(encoding="utf-8") == USER_FILE.replace(
        "show_sidebar = true # I like", "show_sidebar = false # I like"
    )
    settings.ui.show_sidebar = True
    settings.save()
    assert path.read_text(encoding="utf-8") == USER_FILE


def test_a_new_key_is_added_to_its_section_and_unset_removes_it() -> None:
    path = write_config(USER_FILE)
    settings = Settings.load()
    settings.general.temperature = 0.7
    settings.save()
    text = path.read_text(encoding="utf-8")
    assert text == USER_FILE.replace(
        'my_own_note = "kept"\n', 'my_own_note = "kept"\ntemperature = 0.7\n'
    )
    assert Settings.load().general.temperature == 0.7
    settings.general.temperature = None  # "default" in the settings dialog
    settings.save()
    assert path.read_text(encoding="utf-8") == USER_FILE


def test_a_first_save_writes_what_differs_from_the_defaults_only() -> None:
    settings = Settings()
    settings.general.backend = "mock"
    settings.general.model = "mock"
    path = settings.save()
    assert path.read_text(encoding="utf-8") == '[general]\nbackend = "mock"\nmodel = "mock"\n'
    assert Settings.load() == settings


def test_an_edit_made_meanwhile_to_another_key_survives_a_save() -> None:
    path = write_config(USER_FILE)
    settings = Settings.load()  # the app starts
    edited = USER_FILE.replace("tool_timeout = 30 ", "tool_timeout = 90 ")
    path.write_text(edited, encoding="utf-8")  # the user edits the file meanwhile
    settings.ui.theme = "gruvbox"
    settings.save()
    assert path.read_text(encoding="utf-8") == edited.replace('"nord"', '"gruvbox"')


def test_a_file_that_became_invalid_is_not_overwritten() -> None:
    path = write_config(USER_FILE)
    settings = Settings.load()
    broken = USER_FILE + "theme = = oops\n"
    path.write_text(broken, encoding="utf-8")
    settings.ui.theme = "gruvbox"
    with pytest.raises(ConfigurationError) as caught:
        settings.save()
    assert str(path) in caught.value.reason
    assert path.read_text(encoding="utf-8") == broken


def test_a_wrong_value_stays_in_the_file_until_the_app_changes_that_key() -> None:
    text = with_line("ui", 'show_sidebar = "yes"\ntheme = 5')
    path = write_config(text)
    settings = Settings.load()
    assert settings.ui.show_sidebar is True and settings.ui.theme == "textual-dark"
    settings.ui.theme = "nord"
    settings.save()
    assert path.read_text(encoding="utf-8") == text.replace("theme = 5", 'theme = "nord"')


# Reading checks each value ----------------------------------------------------------------
def test_the_users_file_reads_without_complaint_but_for_the_unknown_keys() -> None:
    write_config(USER_FILE)
    settings = Settings.load()
    assert settings.general.tool_timeout == 30.0
    assert isinstance(settings.general.tool_timeout, float)
    assert settings.ui.keybindings == {"chat.new": "ctrl+t"}
    assert settings.notice is not None
    assert settings.notice.reason.splitlines() == [
        "config.toml: [general] my_own_note is not a setting (ignored)",
        "config.toml: [plugins] is not a section of settings (ignored)",
    ]
    assert str(config_path()) in settings.notice.suggestion


@pytest.mark.parametrize(("section", "key", "value", "message"), WRONG_TYPES)
def test_a_wrong_type_is_named_and_the_default_used(
    section: str, key: str, value: str, message: str
) -> None:
    write_config(with_line(section, f"{key} = {value}"))
    settings = Settings.load()
    assert settings.notice is not None
    assert settings.notice.reason == message
    assert getattr(getattr(settings, section), key) == getattr(getattr(Settings(), section), key)


def test_more_types_are_checked() -> None:
    write_config(
        'theme = "top"\n'
        "[fog]\n"
        'strategy = "fastest"\nmax_streams_per_node = 1.5\nallow_http = 1\n'
        '[local]\nn_ctx = "big"\nstop = ["a", 2]\n'
        '[ui.keybindings]\n"chat.new" = 5\n'
        "[openai.extra]\nx = 1\n"
    )
    settings = Settings.load()
    assert settings.notice is not None
    assert settings.notice.reason.splitlines() == [
        "config.toml: theme is outside any section (ignored; it belongs in [ui])",
        'config.toml: [fog] strategy must be one of "random", "least-busy", "ordered" '
        '(got "fastest")',
        "config.toml: [fog] max_streams_per_node must be a whole number (got 1.5)",
        "config.toml: [fog] allow_http must be true or false (got 1)",
        'config.toml: [local] n_ctx must be a whole number (got "big")',
        'config.toml: [local] stop must be a list of strings (got ["a", 2])',
        'config.toml: [ui] keybindings must be a table of strings (got { "chat.new" = 5 })',
        "config.toml: [openai] extra is not a setting (ignored)",
    ]
    assert settings.fog.strategy == "random" and settings.local.n_ctx is None


def test_a_hostile_key_is_quoted_with_its_control_characters_escaped() -> None:
    write_config(with_line("ui", '"\\u001b]0;pwned\\u0007" = 1'))
    notice = Settings.load().notice
    assert notice is not None
    assert notice.reason == 'config.toml: [ui] "\\u001b]0;pwned\\u0007" is not a setting (ignored)'


@pytest.mark.parametrize(("section", "key", "value", "message"), WRONG_TYPES)
def test_ask_warns_on_stderr_and_answers(section: str, key: str, value: str, message: str) -> None:
    write_config(with_line(section, f"{key} = {value}"))
    result = run_cli("ask", "--backend", "mock", "hi")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == DEFAULT_REPLY.strip()
    lines = result.stderr.splitlines()
    assert lines[0] == "warning: Some settings in config.toml were not used."
    assert lines[1] == f"  {message}"
    assert lines[2] == (
        f"  fix: Their defaults apply meanwhile. Correct or delete these lines in {config_path()}."
    )
