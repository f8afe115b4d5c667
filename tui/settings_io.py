"""Reading and writing ``config.toml`` for :mod:`tui.settings`.

Reading checks every value against its field's type (generic over the dataclass
annotations: ``str``, ``int``, ``float``, ``bool``, ``X | None``, ``list[X]``,
``dict[str, X]``, ``Literal[...]``). A wrong value is reported by file, section, key,
expected type and the value found, and its default is used: one bad line never stops
the app. Unknown sections and keys are reported too, and ignored.

Writing edits the user's file in place with tomlkit: only the keys whose value changed
are touched; comments, blank lines, commented-out lines, unknown keys and the order of
everything stay as the user wrote them, byte for byte.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import types
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from backends.errors import ConfigurationError

Snapshot = dict[str, dict[str, Any]]
"""Every setting's value by section and key (what was read, or last written)."""

MAX_SHOWN = 60
"""Longest rendering of a wrong value in a message, in characters."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile("[\x7f-\x9f]")
"""What json.dumps leaves unescaped of the control characters (it escapes C0)."""
_NONE = type(None)


# Types ------------------------------------------------------------------------------------
@cache
def field_types(section: type[Any]) -> dict[str, Any]:
    """A settings section's fields and their resolved types, in declaration order."""
    hints = get_type_hints(section)
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


def convert(value: Any, kind: Any) -> tuple[bool, Any]:
    """``(True, value as the field keeps it)`` when ``value`` fits ``kind``, else ``(False, None)``.

    An int is a fine float (``timeout = 30``); a bool is never a number.
    """
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        for arm in get_args(kind):
            if arm is not _NONE:
                ok, converted = convert(value, arm)
                if ok:
                    return True, converted
        return False, None
    if origin is Literal:
        fits = any(type(value) is type(arm) and value == arm for arm in get_args(kind))
        return (True, value) if fits else (False, None)
    if origin is list:
        if not isinstance(value, list):
            return False, None
        (item_kind,) = get_args(kind)
        items = [convert(item, item_kind) for item in value]
        return (True, [item for _, item in items]) if all(ok for ok, _ in items) else (False, None)
    if origin is dict:
        if not isinstance(value, dict):
            return False, None
        key_kind, value_kind = get_args(kind)
        table: dict[Any, Any] = {}
        for key, item in value.items():
            key_ok, key_value = convert(key, key_kind)
            item_ok, item_value = convert(item, value_kind)
            if not (key_ok and item_ok):
                return False, None
            table[key_value] = item_value
        return True, table
    if kind is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    if kind is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
        return (True, int(value)) if fits else (False, None)
    if kind is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (True, float(value)) if fits else (False, None)
    if kind is str:
        return (True, str(value)) if isinstance(value, str) else (False, None)
    raise TypeError(f"settings cannot check values of type {kind!r}")


_PLURALS = {str: "strings", int: "whole numbers", float: "numbers", bool: "true or false"}


def expected(kind: Any) -> str:
    """What a value of ``kind`` looks like, for people: ``a number``, ``a list of strings``."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(expected(arm) for arm in get_args(kind) if arm is not _NONE)
    if origin is Literal:
        return "one of " + ", ".join(shown(arm) for arm in get_args(kind))
    if origin is list:
        (item_kind,) = get_args(kind)
        return "a list of " + _PLURALS.get(item_kind, expected(item_kind))
    if origin is dict:
        return "a table of " + _PLURALS.get(get_args(kind)[1], expected(get_args(kind)[1]))
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    return names.get(kind, getattr(kind, "__name__", repr(kind)))


def shown(value: Any) -> str:
    """``value`` as TOML writes it, shortened to about :data:`MAX_SHOWN` characters."""
    text = _toml_text(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "isoformat"):  # TOML dates and times
        return str(value.isoformat())
    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{key_text(k)} = {_toml_text(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    return repr(value)


def key_text(key: object) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise."""
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else _quoted(text)


def _quoted(text: str) -> str:
    """``text`` as a TOML basic string, every control character (C0, DEL, C1) escaped."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


# Reading ----------------------------------------------------------------------------------
def read_sections(
    sections: Mapping[str, Any], data: Mapping[str, Any], source: str
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The usable values in TOML ``data`` and the problems found, one message each.

    ``sections`` maps each section's name to its dataclass. ``source`` names the file in
    messages (``config.toml``). Only values that fit are returned; the caller keeps the
    defaults for the rest.
    """
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    problems: list[str] = []
    for name, raw in data.items():
        section = sections.get(name)
        if section is None:
            problems.append(f"{source}: {_unknown_top(name, raw, sections)}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{source}: [{key_text(name)}] must be a table (got {shown(raw)})")
            continue
        kinds = field_types(section)
        for key, value in raw.items():
            where = f"[{key_text(name)}] {key_text(key)}"
            kind = kinds.get(key)
            if kind is None:
                home = _home_of(key, sections)
                hint = f"; it belongs in [{home}]" if home else ""
                problems.append(f"{source}: {where} is not a setting (ignored{hint})")
                continue
            ok, converted = convert(value, kind)
            if ok:
                values[name][key] = converted
            else:
                problems.append(f"{source}: {where} must be {expected(kind)} (got {shown(value)})")
    return values, problems


def _unknown_top(name: str, raw: object, sections: Mapping[str, Any]) -> str:
    if isinstance(raw, dict):
        return f"[{key_text(name)}] is not a section of settings (ignored)"
    home = _home_of(name, sections)
    hint = f"; it belongs in [{home}]" if home else ""
    return f"{key_text(name)} is outside any section (ignored{hint})"


def _home_of(key: str, sections: Mapping[str, Any]) -> str | None:
    """The section that has a setting named ``key``, if one does."""
    for name, section in sections.items():
        if key in field_types(section):
            return name
    return None


def problems_notice(problems: list[str], path: Path) -> ConfigurationError | None:
    """One notice for all the problems in a settings file, or ``None`` when there are none."""
    if not problems:
        return None
    return ConfigurationError(
        f"Some settings in {path.name} were not used.",
        reason="\n".join(problems),
        suggestion=f"Their defaults apply meanwhile. Correct or delete these lines in {path}.",
    )


# Writing ----------------------------------------------------------------------------------
def snapshot(settings: object, sections: Mapping[str, Any]) -> Snapshot:
    """Every setting's current value (a deep copy), by section and key."""
    return {
        name: {key: copy.deepcopy(getattr(getattr(settings, name), key)) for key in kinds}
        for name, kinds in ((name, field_types(section)) for name, section in sections.items())
    }


def updated_text(
    text: str,
    settings: object,
    sections: Mapping[str, Any],
    baseline: Snapshot | None,
    path: Path,
) -> str:
    """``text`` (the file as it is now) with the settings that changed written into it.

    A key is written when its value differs from ``baseline`` (what was read or last
    written; with no baseline, from the default) and from what the file says now, so an
    edit the user made meanwhile to another key survives. ``None`` removes the key.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigurationError(
            "The settings could not be saved: the settings file is not valid TOML.",
            reason=f"{path}: {exc}",
            suggestion="Fix the line named above, or move the file away; "
            "the settings apply until you quit.",
        ) from exc
    raw = document.unwrap()
    usable, _ = read_sections(sections, raw, path.name)
    for name, section in sections.items():
        defaults = section()
        written = raw.get(name)
        for key, kind in field_types(section).items():
            value = getattr(getattr(settings, name), key)
            default = getattr(defaults, key)
            if value == (baseline[name][key] if baseline is not None else default):
                continue  # not changed here: the file keeps what it says
            if key in usable[name]:
                if value == usable[name][key]:
                    continue  # the file says so already
            elif not (isinstance(written, dict) and key in written) and value == default:
                continue  # missing means the default
            _write(document, name, key, value, kind)
    return document.as_string()


def _write(document: Any, name: str, key: str, value: Any, kind: Any) -> None:
    import tomlkit

    table = document.get(name)
    if not isinstance(table, dict):
        if value is None:
            return
        table = tomlkit.table()
        if name in document:
            # Not a table (``ui = 5``, reported when read): the section replaces it.
            document[name] = table
        else:
            document.add(name, table)
        table = document[name]
    if value is None:
        if key in table:
            del table[key]
        return
    current = table.get(key)
    if isinstance(current, dict) and isinstance(value, dict):
        _merge(current, _plain(value, kind))  # keeps the comments of what stays
        return
    table[key] = _plain(value, kind)


def _merge(table: Any, value: dict[Any, Any]) -> None:
    """Make the tomlkit ``table`` hold ``value``, touching only the entries that differ."""
    for key in [key for key in table if key not in value]:
        del table[key]
    for key, item in value.items():
        current = table.get(key)
        if isinstance(current, dict) and isinstance(item, dict):
            _merge(current, item)
        elif key not in table or current != item:
            table[key] = item


def _plain(value: Any, kind: Any) -> Any:
    """``value`` with the type TOML should get (a float field gets a float)."""
    ok, converted = convert(value, kind)
    return converted if ok else value


__all__ = [
    "Snapshot",
    "convert",
    "expected",
    "field_types",
    "problems_notice",
    "read_sections",
    "shown",
    "snapshot",
    "updated_text",
]
