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
parameters that are not required, ``list`` and ``dict[str, T]`` of any of these, and
nested dataclasses or TypedDicts (see :mod:`backends.function_schema`). Descriptions come
from ``Annotated[T, "text"]`` or the docstring. Constraints ride on ``Annotated`` too:
``annotated_types`` markers (``Ge(1)``, ``MaxLen(5)``...) and :class:`Pattern`,
:class:`Format`, :class:`Const`, :class:`UniqueItems` (see
:mod:`backends.function_constraints`); :class:`JSONSchema` hand-writes the schema of a
type the derivation does not know.

Incoming arguments are validated and converted before the function runs; every failure
(invalid JSON, a missing, mistyped or out-of-bounds argument, an exception in the
function) becomes an error :class:`ToolResult` for the model instead of an exception for
the caller.
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
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import LLMError, sentence
from backends.function_constraints import (
    FORMATS,
    ArgumentError,
    Const,
    Format,
    FunctionSchemaError,
    JSONSchema,
    Pattern,
    UniqueItems,
    describe,
)
from backends.function_schema import object_spec

__all__ = [
    "FORMATS",
    "Const",
    "Format",
    "FunctionSchemaError",
    "JSONSchema",
    "Pattern",
    "Tool",
    "ToolResult",
    "UniqueItems",
    "in_daemon_thread",
    "llm_function",
    "load_tools",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DOC_SECTION_RE = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")


def json_object(arguments: str) -> dict[str, Any]:
    """The model's arguments text as a JSON object (empty text: ``{}``).

    Raises ``ValueError`` saying what is wrong, for the error result the model gets.
    """
    text = arguments.strip() or "{}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"the arguments must be a JSON object, got {describe(data)}")
    return data


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model after a function call."""

    content: str
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(message, is_error=True)


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
        spec = object_spec(fields, lambda kwargs: kwargs)
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
        data = json_object(arguments)
        try:
            converted: dict[str, Any] = self._convert(data, "")
        except ArgumentError as exc:
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
            return ToolResult.error(
                sentence(f"Invalid arguments for function '{self.name}': {exc}")
            )
        running: asyncio.Future[Any] = (
            asyncio.ensure_future(self.fn(**kwargs))
            if self.is_async
            else in_daemon_thread(self.fn, kwargs, f"spezichat-function-{self.name}")
        )
        return await settle_call(
            running,
            name=self.name,
            timeout=timeout,
            timed_out="it did not return within the limit of {limit} seconds",
            render=lambda value: ToolResult(_render(value)),
        )


async def settle_call(
    running: asyncio.Future[Any],
    *,
    name: str,
    timeout: float | None,
    timed_out: str,
    render: Callable[[Any], ToolResult],
) -> ToolResult:
    """Wait for a running call at most ``timeout`` seconds; its result for the model.

    On timeout the call is cancelled (a thread is abandoned) and the result says
    "The function NAME timed out: ``timed_out``", with ``{limit}`` in it replaced by the
    seconds. A cancelled or failed call becomes an error result too; otherwise ``render``
    turns the call's value into the result.
    """
    try:
        done, _ = await asyncio.wait((running,), timeout=timeout)
    finally:
        if not running.done():
            running.cancel()
    if not done:
        limit = f"{timeout:g}" if timeout is not None else "?"
        return ToolResult.error(
            f"The function '{name}' timed out: {timed_out.replace('{limit}', limit)}."
        )
    try:
        value = running.result()
    except asyncio.CancelledError:
        # The function cancelled itself (or was cancelled by something it awaited).
        return ToolResult.error(f"The function '{name}' was cancelled.")
    except Exception as exc:
        return ToolResult.error(f"The function '{name}' failed: {type(exc).__name__}: {exc}")
    return render(value)


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
    except SystemExit as exc:  # would end spezichat without a word
        raise FunctionSchemaError(
            "The tools file tried to exit while it was being loaded.",
            reason=f"{file} called sys.exit({exc.code!r}) (or exit()) at import time.",
            suggestion=f"Move the code that exits in {file} under "
            '`if __name__ == "__main__":`, so that it runs only as a script.',
        ) from None
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
