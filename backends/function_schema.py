"""From a type annotation to the JSON schema the model sees and the converter of its values.

:mod:`backends.functions` uses this for every parameter of an ``@llm_function``. The
constraints that ride on ``Annotated`` are in :mod:`backends.function_constraints`.

:class:`~backends.function_constraints.JSONSchema` is the escape hatch for a type the
derivation does not know (``datetime.date``, a third-party class)::

    day: Annotated[date, JSONSchema({"type": "string", "format": "date"},
                                    convert=date.fromisoformat)]

Its hand-written schema is sent as it is; the value's JSON type is checked against the
schema's ``"type"`` and the ``convert`` function (if any) turns the JSON value into the
parameter's value. Without ``convert`` the JSON value is passed through unchanged.
Constraint markers next to it add keywords and checks as for any other type.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from backends.function_constraints import (
    ArgumentError,
    FunctionSchemaError,
    JSONSchema,
    constraint_rules,
    flatten,
    is_marker,
)
from backends.function_constraints import type_error as _fail

# Conversion of JSON values ------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """The schema of one annotation and the converter of its JSON values."""

    schema: dict[str, Any]
    convert: Callable[[Any, str], Any]
    optional: bool = False


def _convert_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    return value


def _convert_int(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise _fail(path, "an integer", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _fail(path, "an integer", value)


def _convert_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, "a number", value)
    return float(value)


def _convert_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "a boolean", value)
    return value


def _convert_any(value: Any, path: str) -> Any:
    return value


def _convert_list(value: Any, path: str) -> Any:
    if not isinstance(value, list):
        raise _fail(path, "an array", value)
    return value


def _convert_dict(value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(path, "an object", value)
    return value


def _convert_null(value: Any, path: str) -> Any:
    if value is not None:
        raise _fail(path, "null", value)
    return value


_PRIMITIVES: dict[Any, Spec] = {
    str: Spec({"type": "string"}, _convert_str),
    int: Spec({"type": "integer"}, _convert_int),
    float: Spec({"type": "number"}, _convert_float),
    bool: Spec({"type": "boolean"}, _convert_bool),
}

_JSON_TYPES: dict[str, Callable[[Any, str], Any]] = {
    "string": _convert_str,
    "integer": _convert_int,
    "number": _convert_float,
    "boolean": _convert_bool,
    "array": _convert_list,
    "object": _convert_dict,
    "null": _convert_null,
}


def _choice_spec(values: Sequence[Any], build: Callable[[Any], Any], where: str) -> Spec:
    if not values or not all(isinstance(v, str) for v in values):
        raise FunctionSchemaError(reason=f"{where} must have string values only.")
    allowed = list(values)

    def convert(value: Any, path: str) -> Any:
        if value not in allowed:
            options = ", ".join(repr(v) for v in allowed)
            raise ArgumentError(f"'{path}' must be one of {options}, got {value!r}")
        return build(value)

    return Spec({"type": "string", "enum": allowed}, convert)


def object_spec(
    fields: list[tuple[str, Any, bool, str | None]], build: Callable[[dict[str, Any]], Any]
) -> Spec:
    """Build an object spec from (name, type, has_default, description) tuples."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    converters: dict[str, Spec] = {}
    for name, annotation, has_default, doc in fields:
        try:
            spec = compile_annotation(annotation)
        except FunctionSchemaError as exc:  # name the parameter (or field)
            raise FunctionSchemaError(
                exc.description, reason=f"'{name}': {exc.reason}", suggestion=exc.suggestion
            ) from exc
        schema = dict(spec.schema)
        if doc and "description" not in schema:
            schema["description"] = doc
        properties[name] = schema
        converters[name] = spec
        if not has_default and not spec.optional:
            required.append(name)

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        return build(_convert_fields(value, converters, required, path))

    return Spec({"type": "object", "properties": properties, "required": required}, convert)


def _convert_fields(
    value: dict[str, Any], converters: dict[str, Spec], required: list[str], path: str
) -> dict[str, Any]:
    prefix = f"{path}." if path else ""
    unknown = [key for key in value if key not in converters]
    if unknown:
        names = ", ".join(f"'{prefix}{key}'" for key in unknown)
        raise ArgumentError(f"unknown argument {names}")
    missing = [name for name in required if name not in value]
    if missing:
        names = ", ".join(f"'{prefix}{name}'" for name in missing)
        raise ArgumentError(f"missing required argument {names}")
    converted: dict[str, Any] = {}
    for key, item in value.items():
        spec = converters[key]
        if item is None and spec.optional:
            converted[key] = None
            continue
        converted[key] = spec.convert(item, prefix + key)
    return converted


def _is_union(origin: Any) -> bool:
    return origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType)


def compile_annotation(annotation: Any) -> Spec:
    """Derive the JSON schema and the converter for one type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin is typing.Annotated:
        return _annotated(args[0], args[1:])

    if _is_union(origin):
        members = [a for a in args if a is not type(None)]
        if len(members) != len(args) and len(members) == 1:
            inner = compile_annotation(members[0])
            return Spec(inner.schema, inner.convert, optional=True)
        raise FunctionSchemaError(
            reason=f"Union types other than Optional[X] are not supported ({annotation!r})."
        )

    if annotation in _PRIMITIVES:
        return _PRIMITIVES[annotation]

    if origin is Literal:
        return _choice_spec(args, lambda v: v, f"Literal {annotation!r}")

    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        enum_type = annotation
        return _choice_spec([m.value for m in enum_type], enum_type, f"Enum {enum_type.__name__}")

    if origin in (list, Sequence) or annotation is list:
        item = compile_annotation(args[0] if args else Any)

        def convert_list(value: Any, path: str) -> list[Any]:
            if not isinstance(value, list):
                raise _fail(path, "an array", value)
            return [item.convert(v, f"{path}[{i}]") for i, v in enumerate(value)]

        return Spec({"type": "array", "items": item.schema}, convert_list)

    if annotation is Any:
        return Spec({}, _convert_any)

    if annotation is dict or origin in (dict, Mapping):
        return _dict_spec(annotation, args)

    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        hints = typing.get_type_hints(annotation, include_extras=True)
        fields = [
            (
                f.name,
                hints[f.name],
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING,
                f.metadata.get("description"),
            )
            for f in dataclasses.fields(annotation)
            if f.init
        ]
        cls = annotation
        spec = object_spec(fields, lambda kwargs: cls(**kwargs))
        return _with_doc(spec, annotation)

    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        optional_keys: frozenset[str] = getattr(annotation, "__optional_keys__", frozenset())
        fields = [(name, tp, name in optional_keys, None) for name, tp in hints.items()]
        spec = object_spec(fields, dict)
        return _with_doc(spec, annotation)

    raise FunctionSchemaError(
        reason=f"The type {annotation!r} cannot be described as JSON.",
        suggestion=(
            "Use a supported type, or describe it by hand: "
            'Annotated[T, JSONSchema({"type": "string"}, convert=...)].'
        ),
    )


def _dict_spec(annotation: Any, args: tuple[Any, ...]) -> Spec:
    if not args or args[1] is Any:
        return Spec({"type": "object"}, _convert_dict)
    if args[0] is not str:
        raise FunctionSchemaError(
            reason=f"JSON object keys are strings; {annotation!r} has other keys.",
            suggestion="Use dict[str, T].",
        )
    item = compile_annotation(args[1])

    def convert_dict(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        prefix = f"{path}." if path else ""
        return {
            key: None if v is None and item.optional else item.convert(v, prefix + key)
            for key, v in value.items()
        }

    return Spec({"type": "object", "additionalProperties": item.schema}, convert_dict)


def _with_doc(spec: Spec, annotation: type) -> Spec:
    # Only the class's own docstring: an inherited one (dict's, for a TypedDict) or the
    # signature dataclasses generate says nothing about the object.
    doc = annotation.__dict__.get("__doc__")
    if doc and not doc.startswith(annotation.__name__ + "("):
        summary = inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")
        return Spec({**spec.schema, "description": summary}, spec.convert, spec.optional)
    return spec


# Annotated: descriptions, constraints, hand-written schemas ------------------------------------


def _annotated(base: Any, metadata: tuple[Any, ...]) -> Spec:
    extras = flatten(metadata)
    hand_written = [meta for meta in extras if isinstance(meta, JSONSchema)]
    if len(hand_written) > 1:
        raise FunctionSchemaError(reason=f"{base!r} has more than one JSONSchema.")
    if hand_written:
        spec = _hand_written(hand_written[0], _is_optional(base))
    else:
        spec = compile_annotation(base)
    markers = [meta for meta in extras if is_marker(meta)]
    if markers:
        spec = _constrain(spec, markers)
    notes = [meta for meta in extras if isinstance(meta, str)]
    if notes:
        return Spec({**spec.schema, "description": notes[0]}, spec.convert, spec.optional)
    return spec


def _is_optional(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_optional(typing.get_args(annotation)[0])
    return _is_union(typing.get_origin(annotation)) and type(None) in typing.get_args(annotation)


def _hand_written(marker: JSONSchema, optional: bool) -> Spec:
    expected = marker.schema.get("type")
    check_type = _JSON_TYPES.get(expected) if isinstance(expected, str) else None
    convert_value = marker.convert

    def convert(value: Any, path: str) -> Any:
        if check_type is not None:
            check_type(value, path)
        if convert_value is None:
            return value
        try:
            return convert_value(value)
        except Exception as exc:
            raise ArgumentError(f"'{path}' is not valid: {type(exc).__name__}: {exc}") from exc

    return Spec(dict(marker.schema), convert, optional)


def _constrain(spec: Spec, markers: list[Any]) -> Spec:
    kind = spec.schema.get("type")
    keywords, checks = constraint_rules(markers, kind if isinstance(kind, str) else None)
    base = spec.convert

    def convert(value: Any, path: str) -> Any:
        converted = base(value, path)  # checks the JSON type first
        for check in checks:
            check(value, path)
        return converted

    return Spec({**spec.schema, **keywords}, convert, spec.optional)
