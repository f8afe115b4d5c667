"""Constraints on function parameters: the markers, their JSON schema and their checks.

SpeziLLM's ``@Parameter`` options, written on ``Annotated`` (see
:mod:`backends.function_schema`)::

    from annotated_types import Ge, Le, MaxLen

    count: Annotated[int, "How many", Ge(1), Le(10)]
    code: Annotated[str, Pattern(r"^[A-Z]{3}$")]
    tags: Annotated[list[str], MaxLen(5), UniqueItems()]

``annotated_types`` markers: ``Gt``/``Ge``/``Lt``/``Le`` (and ``Interval``) give
``exclusiveMinimum``/``minimum``/``exclusiveMaximum``/``maximum`` of a number,
``MultipleOf`` gives ``multipleOf``, ``MinLen``/``MaxLen`` (and ``Len``) give
``minLength``/``maxLength`` of a string, ``minItems``/``maxItems`` of a list and
``minProperties``/``maxProperties`` of a ``dict``. Where ``annotated_types`` has none,
this module's markers: :class:`Pattern`, :class:`Format`, :class:`Const`,
:class:`UniqueItems`. Each constraint is written into the schema *and* checked on the
JSON value the model sent (after its type was checked); a violation goes back to the
model as an error result. :class:`JSONSchema` hand-writes a parameter's whole schema.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import annotated_types as at

from backends.errors import LLMError, sentence


class FunctionSchemaError(LLMError):
    """A function cannot be offered to the model because its schema cannot be derived."""

    description = "The function's schema could not be derived."
    reason = "A parameter has a type that cannot be described as JSON schema."
    suggestion = (
        "Use str, int, float, bool, a string Enum or Literal, Optional, list, dict[str, T], "
        "or a dataclass/TypedDict of these; or give the parameter a JSONSchema(...)."
    )


class ArgumentError(Exception):
    """An argument failed validation; the message names the path and the problem."""


# Markers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """The string must contain a match of this regular expression (``"pattern"``)."""

    regex: str


@dataclass(frozen=True)
class Format:
    """The string must have this format (``"format"``), one of :data:`FORMATS`."""

    name: str


@dataclass(frozen=True, eq=False)
class Const:
    """The value must equal this JSON value (``"const"``)."""

    value: Any


@dataclass(frozen=True)
class UniqueItems:
    """The list's items must all differ (``"uniqueItems": true``)."""


@dataclass(frozen=True, eq=False)
class JSONSchema:
    """A hand-written schema for a parameter, with an optional converter.

    ``convert`` gets the JSON value (after its type was checked against the schema's
    ``"type"``) and returns the value the function receives; an exception it raises goes
    back to the model as an invalid argument. It runs on the event loop: keep it quick.
    """

    schema: Mapping[str, Any]
    convert: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        try:
            # A deep copy, and proof that the schema is JSON.
            copy = json.loads(json.dumps(dict(self.schema)))
        except (TypeError, ValueError) as exc:
            raise FunctionSchemaError(reason=sentence(f"A JSONSchema is not JSON: {exc}")) from exc
        object.__setattr__(self, "schema", copy)


def describe(value: Any) -> str:
    """What kind of JSON value ``value`` is, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def type_error(path: str, expected: str, value: Any) -> ArgumentError:
    """The error for a value of the wrong JSON type at ``path``."""
    return ArgumentError(f"'{path}' must be {expected}, got {describe(value)}")


def flatten(metadata: Iterable[Any]) -> list[Any]:
    """``Annotated`` metadata with grouped markers (``Interval``, ``Len``) unpacked."""
    flat: list[Any] = []
    for meta in metadata:
        if isinstance(meta, at.GroupedMetadata):  # Interval, Len
            flat.extend(flatten(meta))
        else:
            flat.append(meta)
    return flat


def is_marker(meta: Any) -> bool:
    """Whether ``meta`` is a constraint (supported or not) rather than other metadata."""
    return isinstance(meta, (at.BaseMetadata, Pattern, Format, Const, UniqueItems))


Check = Callable[[Any, str], None]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(marker: Any, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _misfit(f"{marker!r} needs a finite int or float bound.")
    return value


def _bound(bound: float | int, words: str, holds: Callable[[Any], bool]) -> Check:
    def check(value: Any, path: str) -> None:
        if not holds(value):
            raise ArgumentError(f"'{path}' must be {words} {bound}, got {_short(value)}")

    return check


_UNITS = {
    "string": ("character", "characters"),
    "array": ("item", "items"),
    "object": ("entry", "entries"),
}


def _length(kind: str, limit: int, at_least: bool) -> Check:
    unit = _UNITS[kind][0 if limit == 1 else 1]
    words = "at least" if at_least else "at most"

    def check(value: Any, path: str) -> None:
        if (len(value) < limit) if at_least else (len(value) > limit):
            raise ArgumentError(f"'{path}' must have {words} {limit} {unit}, got {len(value)}")

    return check


_LENGTH_KEYWORDS = {
    "string": ("minLength", "maxLength"),
    "array": ("minItems", "maxItems"),
    "object": ("minProperties", "maxProperties"),
}


def _misfit(reason: str) -> FunctionSchemaError:
    return FunctionSchemaError(
        reason=reason,
        suggestion="Give the constraint a valid value, on a parameter of a type it applies to.",
    )


def _rule(marker: Any, kind: str | None) -> tuple[str, Any, Check]:
    """The schema keyword, its value and the check of one constraint marker."""
    numeric = kind in ("integer", "number")
    name = type(marker).__name__
    if isinstance(marker, (at.Gt, at.Ge, at.Lt, at.Le)):
        if not numeric:
            raise _misfit(f"{name} applies to int and float, not {kind}.")
        if isinstance(marker, at.Gt):
            b = _number(marker, marker.gt)
            return "exclusiveMinimum", b, _bound(b, "greater than", lambda v: v > b)
        if isinstance(marker, at.Ge):
            b = _number(marker, marker.ge)
            return "minimum", b, _bound(b, "at least", lambda v: v >= b)
        if isinstance(marker, at.Lt):
            b = _number(marker, marker.lt)
            return "exclusiveMaximum", b, _bound(b, "less than", lambda v: v < b)
        b = _number(marker, marker.le)
        return "maximum", b, _bound(b, "at most", lambda v: v <= b)
    if isinstance(marker, at.MultipleOf):
        if not numeric:
            raise _misfit(f"MultipleOf applies to int and float, not {kind}.")
        step = _number(marker, marker.multiple_of)
        if step <= 0:
            raise _misfit("MultipleOf needs a step greater than 0.")
        return "multipleOf", step, _bound(step, "a multiple of", lambda v: _multiple(v, step))
    if isinstance(marker, (at.MinLen, at.MaxLen)):
        if kind not in _LENGTH_KEYWORDS:
            raise _misfit(f"{name} applies to str, list and dict[str, T], not {kind}.")
        at_least = isinstance(marker, at.MinLen)
        limit = marker.min_length if isinstance(marker, at.MinLen) else marker.max_length
        keyword = _LENGTH_KEYWORDS[kind][0 if at_least else 1]
        return keyword, limit, _length(kind, limit, at_least)
    if isinstance(marker, Pattern):
        if kind != "string":
            raise _misfit(f"Pattern applies to str, not {kind}.")
        try:
            regex = re.compile(marker.regex)
        except re.error as exc:
            raise _misfit(sentence(f"Pattern {marker.regex!r}: {exc}")) from exc

        def matches(value: Any, path: str) -> None:
            if regex.search(value) is None:
                raise ArgumentError(
                    f"'{path}' must match the pattern {marker.regex!r}, got {_short(value)}"
                )

        return "pattern", marker.regex, matches
    if isinstance(marker, Format):
        return "format", marker.name, _format_check(marker.name, kind)
    if isinstance(marker, Const):
        return "const", _json_value(marker.value), _const_check(marker.value)
    if isinstance(marker, UniqueItems):
        if kind != "array":
            raise _misfit(f"UniqueItems applies to list, not {kind}.")
        return "uniqueItems", True, _unique
    raise FunctionSchemaError(
        reason=f"The constraint {marker!r} cannot be written as JSON schema.",
        suggestion="Use Gt, Ge, Lt, Le, MultipleOf, MinLen, MaxLen, Len, Interval, "
        "Pattern, Format, Const or UniqueItems.",
    )


def constraint_rules(markers: list[Any], kind: str | None) -> tuple[dict[str, Any], list[Check]]:
    """The schema keywords and the checks of ``markers`` on a value of JSON type ``kind``.

    Raises :class:`FunctionSchemaError` for a marker that does not fit the type, is given
    twice or cannot be written as JSON schema.
    """
    keywords: dict[str, Any] = {}
    checks: list[Check] = []
    for marker in markers:
        keyword, value, check = _rule(marker, kind)
        if keyword in keywords:
            raise _misfit(f"The constraint '{keyword}' is given twice.")
        keywords[keyword] = value
        checks.append(check)
    return keywords, checks


def _multiple(value: Any, step: float | int) -> bool:
    # On the decimal text, so that 0.3 counts as a multiple of 0.1.
    try:
        return decimal.Decimal(repr(value)) % decimal.Decimal(repr(step)) == 0
    except decimal.InvalidOperation:
        return False


def _json_value(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise _misfit(f"Const({value!r}) is not a JSON value.") from exc


def _same(a: Any, b: Any) -> bool:
    """Equality of two JSON values as JSON schema has it (1 == 1.0, True != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _const_check(expected: Any) -> Check:
    wanted = _json_value(expected)

    def check(value: Any, path: str) -> None:
        if not _same(value, wanted):
            raise ArgumentError(f"'{path}' must be {_short(wanted)}, got {_short(value)}")

    return check


def _unique(value: Any, path: str) -> None:
    for index, item in enumerate(value):
        for earlier in range(index):
            if _same(value[earlier], item):
                raise ArgumentError(
                    f"'{path}' must have unique items, but items {earlier} and {index} are equal"
                )


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _is_date_time(text: str) -> bool:
    if len(text) < 16 or text[10] not in "Tt" or not _DATE.match(text[:10]):
        return False
    datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    return True


FORMATS: dict[str, Callable[[str], object]] = {
    "date": lambda t: _DATE.match(t) and datetime.date.fromisoformat(t),
    "date-time": _is_date_time,
    "time": lambda t: datetime.time.fromisoformat(t[:-1] if t[-1:] in "Zz" else t),
    "duration": _DURATION.match,
    "email": re.compile(r"^[^@\s]+@[^@\s]+$").match,
    "hostname": _HOSTNAME.match,
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
    "uuid": lambda t: _UUID.match(t) and uuid.UUID(t),
    "uri": re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$").match,
}
"""The formats :class:`Format` knows, each with a test that returns something falsy or
raises ``ValueError`` for a string without that format."""


def _format_check(name: str, kind: str | None) -> Check:
    if kind != "string":
        raise _misfit(f"Format applies to str, not {kind}.")
    test = FORMATS.get(name)
    if test is None:
        raise FunctionSchemaError(
            reason=f"The format {name!r} is not known.",
            suggestion="Use one of " + ", ".join(sorted(FORMATS)) + ".",
        )

    def check(value: Any, path: str) -> None:
        try:
            ok = bool(test(value))
        except ValueError:
            ok = False
        if not ok:
            raise ArgumentError(f"'{path}' must be a {name}, got {_short(value)}")

    return check
