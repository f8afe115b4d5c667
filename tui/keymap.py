"""Every key binding of the app, in one table.

Each binding has an id (``scope.name``). Users remap keys in ``config.toml``::

    [ui.keybindings]
    "chat.new" = "ctrl+t"
    "prompt.newline" = "shift+enter,ctrl+j,alt+enter"

The widgets build their ``BINDINGS`` from this table, the help screen lists it, and the
README documents it, so the three never drift apart. This module imports no Textual at
module level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    """One key binding: its id, default keys, the action it runs and what it does."""

    id: str
    keys: str
    action: str
    description: str
    show: bool = True
    priority: bool = False
    display: str | None = None
    short: str | None = None
    """The footer's label, where ``description`` would crowd it (the help lists both)."""

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]


SCOPES: dict[str, str] = {
    "app": "Everywhere",
    "chat": "Chat screen",
    "prompt": "Prompt (the text box at the bottom)",
    "message": "A selected message",
    "sidebar": "Conversation list",
    "settings": "Settings screen",
    "mcp": "MCP servers screen",
    "onboarding": "Onboarding",
    "dialog": "Dialogs",
}
"""Binding scopes, in the order the help screen and the README list them."""

KEYS: tuple[Key, ...] = (
    Key("app.quit", "ctrl+q", "app.quit", "Quit", priority=True),
    Key("app.help", "f1", "app.help", "Help"),
    Key("app.palette", "ctrl+p", "app.command_palette", "Commands", show=False, priority=True),
    # The chat screen's footer shows its keys in this order, as many as fit.
    Key("chat.stop", "escape", "stop", "Stop reply", priority=False, short="Stop"),
    Key("chat.new", "ctrl+n", "new_chat", "New"),
    Key("chat.search", "ctrl+f", "search", "Search", short="Find"),
    Key("chat.messages", "ctrl+up,alt+up", "focus_messages", "Select message", short="Select"),
    Key("chat.conversations", "ctrl+l", "focus_sidebar", "Conversation list", short="Chats"),
    Key(
        "chat.sidebar",
        "ctrl+b",
        "toggle_sidebar",
        "Show or hide the conversation list",
        short="List",
    ),
    Key("chat.model", "f3", "switch_model", "Model"),
    Key("chat.retry", "ctrl+r", "retry", "Retry"),
    Key("chat.export", "ctrl+s", "export", "Export"),
    Key("chat.settings", "f2", "settings", "Settings"),
    Key("prompt.send", "enter", "send", "Send", show=False, priority=True),
    Key(
        "prompt.newline",
        "shift+enter,ctrl+j",
        "newline",
        "New line",
        show=False,
        priority=True,
        display="shift+⏎",
    ),
    # Bound on the chat screen, ahead of the prompt's own PageUp/PageDown (which would
    # only move its cursor): while the prompt has the focus they scroll the conversation.
    Key(
        "prompt.page_up",
        "pageup",
        "page_messages(-1)",
        "Scroll the conversation up",
        show=False,
        priority=True,
    ),
    Key(
        "prompt.page_down",
        "pagedown",
        "page_messages(1)",
        "Scroll the conversation down",
        show=False,
        priority=True,
    ),
    Key("message.copy", "c", "copy", "Copy"),
    Key("message.copy_code", "b", "copy_code", "Copy code", short="Code"),
    Key("message.previous", "up,k", "previous", "Previous", show=False),
    Key("message.next", "down,j", "next", "Next", show=False),
    Key("message.prompt", "escape,i", "prompt", "Back to prompt", short="Back"),
    Key("sidebar.rename", "r", "rename", "Rename"),
    Key("sidebar.delete", "d,delete", "delete", "Delete"),
    Key("sidebar.prompt", "escape", "prompt", "Back to prompt", show=False),
    Key("settings.save", "ctrl+s", "save", "Save", priority=True),
    Key("mcp.restart", "r", "restart", "Restart the server"),
    Key("mcp.disable", "d", "disable", "Disable the server (this run)"),
    Key("onboarding.back", "escape", "back", "Back"),
    Key("dialog.yes", "y", "yes", "Yes"),
    Key("dialog.no", "n", "no", "No"),
    Key("dialog.close", "escape", "close", "Close"),
)
"""The default key bindings."""

_BY_ID = {key.id: key for key in KEYS}
_KEY_RE = re.compile(r"^[a-z0-9_+\-.,?!/\\@#$%^&*()\[\]{}<>:;'\"`~=|⏎ ]+$", re.IGNORECASE)


def binding(binding_id: str) -> Binding:
    """The Textual binding for ``binding_id`` (its default keys; the keymap remaps them)."""
    from textual.binding import Binding

    key = _BY_ID[binding_id]
    return Binding(
        key.keys,
        key.action,
        key.short or key.description,
        show=key.show,
        tooltip=key.description if key.short else "",
        priority=key.priority,
        key_display=key.display,
        id=key.id,
    )


def bindings(*binding_ids: str) -> list[Any]:
    """Textual bindings for ``BINDINGS`` class variables."""
    return [binding(binding_id) for binding_id in binding_ids]


def check_keymap(keymap: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Split a ``[ui.keybindings]`` table into usable entries and problems to report."""
    usable: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id not in _BY_ID:
            problems.append(f"unknown binding id '{binding_id}'")
        elif not isinstance(keys, str) or not keys.strip() or not _KEY_RE.match(keys):
            problems.append(f"'{binding_id}' needs keys as text, for example \"ctrl+t\"")
        else:
            usable[binding_id] = keys.replace(" ", "")
    return usable, problems


_KEY_NAMES = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "escape": "Esc", "enter": "Enter"}


def key_label(binding_id: str, keymap: Mapping[str, str] | None = None) -> str:
    """The first key of ``binding_id`` (after ``keymap``) as people write it: "Ctrl+P"."""
    keys = (keymap or {}).get(binding_id, _BY_ID[binding_id].keys)
    parts = keys.split(",")[0].split("+")
    return "+".join(
        _KEY_NAMES.get(part, part.upper() if re.fullmatch(r".|f\d+", part) else part.capitalize())
        for part in parts
    )


def effective_keys(keymap: Mapping[str, str]) -> list[tuple[Key, str]]:
    """Every binding with the keys in force after applying ``keymap``."""
    return [(key, keymap.get(key.id, key.keys)) for key in KEYS]
