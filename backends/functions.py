"""Function calling: declare a tool as a plain typed Python function.

    @llm_function
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        '''Get the current weather for a city.

        Args:
            city: Name of the city, for example "Berlin".
            unit: Temperature unit of the answer.
        '''

The JSON schema the model sees is derived from the type hints: ``str``, ``int``,
``float``, ``bool``, string ``Enum`` and ``Literal``, ``Optional`` (or a default) for
parameters that are not required, ``list`` of any of these, and nested dataclasses or
TypedDicts. Descriptions come from ``Annotated[T, "text"]`` or the docstring.

Incoming arguments are validated and converted before the function runs; every failure
(invalid JSON, a missing or mistyped argument, an exception in the function) becomes an
error :class:`ToolResult` for the model instead of an exception for the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import enum
import importlib.util
import inspect
import json
import re
import sys
import threading
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from backends.errors import LLMError

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DOC_SECTION_RE = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")


class FunctionSchemaError(LLMError):
    """A function cannot be offered to the model because its schema cannot be derived."""

    description = "The function's schema could not be derived."
    reason = "A parameter has a type that cannot be described as JSON schema."
    suggestion = (
        "Use str, int, float, bool, a string Enum or Literal, Optional, list, "
        "or a dataclass/TypedDict of these."
    )


class _ArgumentError(Exception):
    """An argument failed validation; the message names the path and the problem."""


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model after a function call."""

    content: str
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(message, is_error=True)


@dataclass(frozen=True)
class _Spec:
    schema: dict[str, Any]
    convert: Callable[[Any, str], Any]
    optional: bool = False


def _describe(value: Any) -> str:
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


def _fail(path: str, expected: str, value: Any) -> _ArgumentError:
    return _ArgumentError(f"'{path}' must be {expected}, got {_describe(value)}")


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


_PRIMITIVES: dict[Any, _Spec] = {
    str: _Spec({"type": "string"}, _convert_str),
    int: _Spec({"type": "integer"}, _convert_int),
    float: _Spec({"type": "number"}, _convert_float),
    bool: _Spec({"type": "boolean"}, _convert_bool),
}


def _choice_spec(values: Sequence[Any], build: Callable[[Any], Any], where: str) -> _Spec:
    if not values or not all(isinstance(v, str) for v in values):
        raise FunctionSchemaError(reason=f"{where} must have string values only.")
    allowed = list(values)

    def convert(value: Any, path: str) -> Any:
        if value not in allowed:
            options = ", ".join(repr(v) for v in allowed)
            raise _ArgumentError(f"'{path}' must be one of {options}, got {value!r}")
        return build(value)

    return _Spec({"type": "string", "enum": allowed}, convert)


def _object_spec(
    fields: list[tuple[str, Any, bool, str | None]], build: Callable[[dict[str, Any]], Any]
) -> _Spec:
    """Build an object spec from (name, type, has_default, description) tuples."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    converters: dict[str, _Spec] = {}
    for name, annotation, has_default, doc in fields:
        spec = _compile(annotation)
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

    return _Spec({"type": "object", "properties": properties, "required": required}, convert)


def _convert_fields(
    value: dict[str, Any], converters: dict[str, _Spec], required: list[str], path: str
) -> dict[str, Any]:
    prefix = f"{path}." if path else ""
    unknown = [key for key in value if key not in converters]
    if unknown:
        names = ", ".join(f"'{prefix}{key}'" for key in unknown)
        raise _ArgumentError(f"unknown argument {names}")
    missing = [name for name in required if name not in value]
    if missing:
        names = ", ".join(f"'{prefix}{name}'" for name in missing)
        raise _ArgumentError(f"missing required argument {names}")
    converted: dict[str, Any] = {}
    for key, item in value.items():
        spec = converters[key]
        if item is None and spec.optional:
            converted[key] = None
            continue
        converted[key] = spec.convert(item, prefix + key)
    return converted


def _compile(annotation: Any) -> _Spec:
    """Derive the JSON schema and the converter for one type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin is typing.Annotated:
        spec = _compile(args[0])
        notes = [meta for meta in args[1:] if isinstance(meta, str)]
        if notes:
            return _Spec({**spec.schema, "description": notes[0]}, spec.convert, spec.optional)
        return spec

    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != len(args) and len(members) == 1:
            inner = _compile(members[0])
            return _Spec(inner.schema, inner.convert, optional=True)
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
        item_type = args[0] if args else Any
        item = _compile(item_type)

        def convert_list(value: Any, path: str) -> list[Any]:
            if not isinstance(value, list):
                raise _fail(path, "an array", value)
            return [item.convert(v, f"{path}[{i}]") for i, v in enumerate(value)]

        return _Spec({"type": "array", "items": item.schema}, convert_list)

    if annotation is Any:
        return _Spec({}, _convert_any)

    if annotation is dict or origin is dict:

        def convert_dict(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise _fail(path, "an object", value)
            return value

        return _Spec({"type": "object"}, convert_dict)

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
        spec = _object_spec(fields, lambda kwargs: cls(**kwargs))
        return _with_doc(spec, annotation)

    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        optional_keys: frozenset[str] = getattr(annotation, "__optional_keys__", frozenset())
        fields = [(name, tp, name in optional_keys, None) for name, tp in hints.items()]
        spec = _object_spec(fields, dict)
        return _with_doc(spec, annotation)

    raise FunctionSchemaError(reason=f"The type {annotation!r} cannot be described as JSON.")


def _with_doc(spec: _Spec, annotation: type) -> _Spec:
    # Only the class's own docstring: an inherited one (dict's, for a TypedDict) or the
    # signature dataclasses generate says nothing about the object.
    doc = annotation.__dict__.get("__doc__")
    if doc and not doc.startswith(annotation.__name__ + "("):
        summary = inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")
        return _Spec({**spec.schema, "description": summary}, spec.convert, spec.optional)
    return spec


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and per-parameter descriptions.

    Understands Google style (``Args:`` sections) and Sphinx style (``:param x:``).
    """
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    arg_indent: int | None = None
    for raw in lines:
        line = raw.rstrip()
        sphinx = re.match(r"^\s*:param\s+(?:[\w\[\], |]+\s+)?(\w+)\s*:\s*(.*)$", line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            in_args = False
            continue
        if _DOC_SECTION_RE.match(line):
            in_args, current, arg_indent = True, None, None
            continue
        if in_args:
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent == 0:
                in_args = False
            else:
                if arg_indent is None:
                    arg_indent = indent
                item = re.match(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
                if indent == arg_indent and item:
                    current = item.group(1)
                    params[current] = item.group(2).strip()
                elif current is not None:
                    params[current] = f"{params[current]} {line.strip()}".strip()
                continue
        if current is not None and line.startswith((" ", "\t")) and line.strip():
            params[current] = f"{params[current]} {line.strip()}".strip()
            continue
        current = None
        if not in_args and not params and not line.lstrip().startswith(":"):
            summary.append(line)
    text = "\n".join(summary).strip()
    first_paragraph = text.split("\n\n")[0].replace("\n", " ").strip()
    return first_paragraph, params


class Tool:
    """A Python function offered to the model. Calling the tool calls the function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not _NAME_RE.match(self.name):
            raise FunctionSchemaError(
                reason=f"'{self.name}' is not a valid function name "
                "(letters, digits, '_' and '-', at most 64).",
                suggestion="Pass a valid name, for example @llm_function(name='get_weather').",
            )
        summary, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception as exc:  # a forward reference that cannot be resolved
            raise FunctionSchemaError(reason=f"Type hints of '{self.name}': {exc}") from exc
        fields: list[tuple[str, Any, bool, str | None]] = []
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise FunctionSchemaError(
                    reason=f"'{self.name}' takes *{param.name}; only named parameters work."
                )
            if param.name not in hints:
                raise FunctionSchemaError(
                    reason=f"Parameter '{param.name}' of '{self.name}' has no type hint.",
                    suggestion="Annotate every parameter, for example `city: str`.",
                )
            fields.append(
                (
                    param.name,
                    hints[param.name],
                    param.default is not inspect.Parameter.empty,
                    param_docs.get(param.name),
                )
            )
        spec = _object_spec(fields, lambda kwargs: kwargs)
        self.parameters: dict[str, Any] = spec.schema
        self._convert = spec.convert

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def to_openai(self) -> dict[str, Any]:
        """The ``tools`` entry of a chat-completions request."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        """Validate and convert the model's JSON arguments; raises ``ValueError``."""
        text = arguments.strip() or "{}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the arguments are not valid JSON ({exc.msg} at {exc.pos})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"the arguments must be a JSON object, got {_describe(data)}")
        try:
            converted: dict[str, Any] = self._convert(data, "")
        except _ArgumentError as exc:
            raise ValueError(str(exc)) from exc
        return converted

    async def invoke(self, arguments: str, *, timeout: float | None = None) -> ToolResult:
        """Run the function with the model's JSON arguments; never raises.

        A plain function runs on a daemon thread of its own, an async one on the event
        loop. After ``timeout`` seconds (``None``: no limit) the call ends with an error
        result naming the limit: an async function is cancelled; a thread cannot be
        stopped, so it is abandoned, and being a daemon it does not keep the process
        alive. Cancelling ``invoke`` itself abandons or cancels the function the same way.
        """
        try:
            kwargs = self.parse_arguments(arguments)
        except ValueError as exc:
            return ToolResult.error(f"Invalid arguments for function '{self.name}': {exc}.")
        running: asyncio.Future[Any] = (
            asyncio.ensure_future(self.fn(**kwargs))
            if self.is_async
            else in_daemon_thread(self.fn, kwargs, f"spezichat-function-{self.name}")
        )
        try:
            done, _ = await asyncio.wait((running,), timeout=timeout)
        finally:
            if not running.done():
                running.cancel()
        if not done:
            return ToolResult.error(
                f"The function '{self.name}' timed out: it did not return within the "
                f"limit of {timeout:g} seconds."
            )
        try:
            value = running.result()
        except asyncio.CancelledError:
            # The function cancelled itself (or was cancelled by something it awaited).
            return ToolResult.error(f"The function '{self.name}' was cancelled.")
        except Exception as exc:
            return ToolResult.error(
                f"The function '{self.name}' failed: {type(exc).__name__}: {exc}"
            )
        return ToolResult(_render(value))


def in_daemon_thread(
    fn: Callable[..., Any], kwargs: dict[str, Any], name: str
) -> asyncio.Future[Any]:
    """Run ``fn(**kwargs)`` on a new daemon thread; the future gets its outcome.

    Unlike ``asyncio.to_thread`` (the default executor, whose threads are joined when
    the loop and the interpreter shut down) a function that never returns cannot keep
    the process alive. Cancelling the future abandons the thread.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return  # abandoned: timed out or cancelled meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(fn, **kwargs)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: not for the app
            error = RuntimeError(f"the function raised {type(exc).__name__}")
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _render(value: Any) -> str:
    if value is None:
        return "(the function returned no result)"
    if isinstance(value, str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        value = value.value
    return json.dumps(value, ensure_ascii=False, default=str)


@typing.overload
def llm_function(fn: Callable[..., Any], /) -> Tool: ...
@typing.overload
def llm_function(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...
def llm_function(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Decorator that turns a typed function into a :class:`Tool`."""
    if fn is not None:
        return Tool(fn, name=name, description=description)

    def decorate(inner: Callable[..., Any]) -> Tool:
        return Tool(inner, name=name, description=description)

    return decorate


def load_tools(path: str | Path) -> list[Tool]:
    """Import a Python file and return the tools it defines with ``@llm_function``."""
    file = Path(path)
    if not file.is_file():
        raise FunctionSchemaError(
            "The tools file was not found.",
            reason=f"{file} does not exist or is not a file.",
            suggestion="Pass the path of a Python file that defines @llm_function tools.",
        )
    module_name = f"spezichat_tools_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise FunctionSchemaError(
            "The tools file could not be loaded.",
            reason=f"{file} is not a Python module.",
            suggestion="Pass a .py file.",
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except LLMError:
        raise
    except Exception as exc:
        raise FunctionSchemaError(
            "The tools file raised an error while loading.",
            reason=f"{type(exc).__name__}: {exc}",
            suggestion=f"Fix {file} so that `python {file}` runs without errors.",
        ) from exc
    tools = [value for value in vars(module).values() if isinstance(value, Tool)]
    if not tools:
        raise FunctionSchemaError(
            "The tools file defines no tools.",
            reason=f"No function in {file} is decorated with @llm_function.",
            suggestion="Decorate the functions with `from backends import llm_function`.",
        )
    return tools
