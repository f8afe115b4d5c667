"""Function-calling schema and argument tests, mirroring SpeziLLM's parameter suites.

Each suite declares a tool, asserts the exact JSON schema emitted for the model, then
invokes the tool with JSON arguments and asserts the converted values it received.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Annotated, Any, Literal, Optional, TypedDict

import pytest

from backends.functions import FunctionSchemaError, Tool, ToolResult, llm_function, load_tools

received: dict[str, Any] = {}


def record(**kwargs: Any) -> str:
    received.clear()
    received.update(kwargs)
    return "ok"


async def call(tool: Tool, arguments: dict[str, Any] | str) -> ToolResult:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return await tool.invoke(text)


# Primitive types -----------------------------------------------------------------------


@llm_function(name="test_function")
def primitive_tool(
    int_parameter: int, double_parameter: float, bool_parameter: bool, string_parameter: str
) -> str:
    """This is a test LLM function."""
    return record(
        int_parameter=int_parameter,
        double_parameter=double_parameter,
        bool_parameter=bool_parameter,
        string_parameter=string_parameter,
    )


async def test_primitive_schema_and_values() -> None:
    assert primitive_tool.to_openai() == {
        "type": "function",
        "function": {
            "name": "test_function",
            "description": "This is a test LLM function.",
            "parameters": {
                "type": "object",
                "properties": {
                    "int_parameter": {"type": "integer"},
                    "double_parameter": {"type": "number"},
                    "bool_parameter": {"type": "boolean"},
                    "string_parameter": {"type": "string"},
                },
                "required": [
                    "int_parameter",
                    "double_parameter",
                    "bool_parameter",
                    "string_parameter",
                ],
            },
        },
    }
    result = await call(
        primitive_tool,
        {
            "int_parameter": 12,
            "double_parameter": 12.34,
            "bool_parameter": True,
            "string_parameter": "1234",
        },
    )
    assert result == ToolResult("ok")
    assert received == {
        "int_parameter": 12,
        "double_parameter": 12.34,
        "bool_parameter": True,
        "string_parameter": "1234",
    }
    assert type(received["double_parameter"]) is float


async def test_integer_accepted_for_number_and_integral_float_for_integer() -> None:
    await call(
        primitive_tool,
        {
            "int_parameter": 3.0,
            "double_parameter": 2,
            "bool_parameter": False,
            "string_parameter": "",
        },
    )
    assert received["int_parameter"] == 3 and type(received["int_parameter"]) is int
    assert received["double_parameter"] == 2.0 and type(received["double_parameter"]) is float


# Optional types -------------------------------------------------------------------------


@llm_function(name="test_optional_function")
def optional_function_tool(
    int_parameter: Optional[int] = None,  # noqa: UP045 - the typing spelling is under test
    double_parameter: float | None = None,
    bool_parameter: bool | None = None,
    string_parameter: str | None = None,
    int_array_parameter: list[int] | None = None,
    double_array_parameter: list[float] | None = None,
    bool_array_parameter: list[bool] | None = None,
    string_array_parameter: list[str] | None = None,
    array_nil_parameter: list[str] | None = None,
) -> str:
    """This is a test optional LLM function."""
    return record(
        int_parameter=int_parameter,
        double_parameter=double_parameter,
        bool_parameter=bool_parameter,
        string_parameter=string_parameter,
        int_array_parameter=int_array_parameter,
        double_array_parameter=double_array_parameter,
        bool_array_parameter=bool_array_parameter,
        string_array_parameter=string_array_parameter,
        array_nil_parameter=array_nil_parameter,
    )


async def test_optional_schema_and_values() -> None:
    assert optional_function_tool.parameters == {
        "type": "object",
        "properties": {
            "int_parameter": {"type": "integer"},
            "double_parameter": {"type": "number"},
            "bool_parameter": {"type": "boolean"},
            "string_parameter": {"type": "string"},
            "int_array_parameter": {"type": "array", "items": {"type": "integer"}},
            "double_array_parameter": {"type": "array", "items": {"type": "number"}},
            "bool_array_parameter": {"type": "array", "items": {"type": "boolean"}},
            "string_array_parameter": {"type": "array", "items": {"type": "string"}},
            "array_nil_parameter": {"type": "array", "items": {"type": "string"}},
        },
        "required": [],
    }
    arguments = {
        "int_parameter": 123,
        "double_parameter": 12.34,
        "bool_parameter": True,
        "string_parameter": "1234",
        "int_array_parameter": [1, 2, 3],
        "double_array_parameter": [12.34, 56.78],
        "bool_array_parameter": [True, False],
        "string_array_parameter": ["1234", "5678"],
    }
    assert (await call(optional_function_tool, arguments)).content == "ok"
    assert received == {**arguments, "array_nil_parameter": None}
    # Explicit nulls are accepted for optional parameters.
    assert (await call(optional_function_tool, {"int_parameter": None})).content == "ok"
    assert received["int_parameter"] is None


# Arrays ----------------------------------------------------------------------------------


@llm_function(name="test_array_function")
def array_function_tool(
    int_array_parameter: list[int],
    double_array_parameter: list[float],
    bool_array_parameter: list[bool],
    string_array_parameter: list[str],
) -> str:
    """This is a test array LLM function."""
    return record(
        int_array_parameter=int_array_parameter,
        double_array_parameter=double_array_parameter,
        bool_array_parameter=bool_array_parameter,
        string_array_parameter=string_array_parameter,
    )


async def test_array_schema_and_values() -> None:
    properties = array_function_tool.parameters["properties"]
    assert properties["int_array_parameter"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["double_array_parameter"] == {"type": "array", "items": {"type": "number"}}
    assert properties["bool_array_parameter"] == {"type": "array", "items": {"type": "boolean"}}
    assert properties["string_array_parameter"] == {"type": "array", "items": {"type": "string"}}
    assert array_function_tool.parameters["required"] == list(properties)
    arguments = {
        "int_array_parameter": [1, 2],
        "double_array_parameter": [3.1, 4.6],
        "bool_array_parameter": [True, False],
        "string_array_parameter": ["test1", "test2"],
    }
    assert (await call(array_function_tool, arguments)).content == "ok"
    assert received == arguments


# Enums -----------------------------------------------------------------------------------


class CustomEnumType(str, enum.Enum):
    OPTION_A = "optionA"
    OPTION_B = "optionB"


@llm_function(name="test_enum_function")
def enum_function_tool(
    enum_parameter: CustomEnumType,
    array_enum_parameter: list[CustomEnumType],
    literal_parameter: Literal["celsius", "fahrenheit"],
    optional_enum_parameter: CustomEnumType | None = None,
    optional_array_enum_parameter: list[CustomEnumType] | None = None,
) -> str:
    """This is a test enum LLM function."""
    return record(
        enum_parameter=enum_parameter,
        array_enum_parameter=array_enum_parameter,
        literal_parameter=literal_parameter,
        optional_enum_parameter=optional_enum_parameter,
        optional_array_enum_parameter=optional_array_enum_parameter,
    )


async def test_enum_schema_and_values() -> None:
    enum_schema = {"type": "string", "enum": ["optionA", "optionB"]}
    assert enum_function_tool.parameters == {
        "type": "object",
        "properties": {
            "enum_parameter": enum_schema,
            "array_enum_parameter": {"type": "array", "items": enum_schema},
            "literal_parameter": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "optional_enum_parameter": enum_schema,
            "optional_array_enum_parameter": {"type": "array", "items": enum_schema},
        },
        "required": ["enum_parameter", "array_enum_parameter", "literal_parameter"],
    }
    result = await call(
        enum_function_tool,
        {
            "enum_parameter": "optionB",
            "array_enum_parameter": ["optionA", "optionB"],
            "literal_parameter": "celsius",
            "optional_enum_parameter": "optionA",
            "optional_array_enum_parameter": ["optionB", "optionA"],
        },
    )
    assert result.content == "ok"
    assert received == {
        "enum_parameter": CustomEnumType.OPTION_B,
        "array_enum_parameter": [CustomEnumType.OPTION_A, CustomEnumType.OPTION_B],
        "literal_parameter": "celsius",
        "optional_enum_parameter": CustomEnumType.OPTION_A,
        "optional_array_enum_parameter": [CustomEnumType.OPTION_B, CustomEnumType.OPTION_A],
    }
    assert isinstance(received["enum_parameter"], CustomEnumType)


async def test_enum_value_outside_the_choices_is_an_error_result() -> None:
    result = await call(
        enum_function_tool,
        {"enum_parameter": "optionC", "array_enum_parameter": [], "literal_parameter": "kelvin"},
    )
    assert result.is_error
    assert "'enum_parameter' must be one of 'optionA', 'optionB', got 'optionC'" in result.content


# Custom (nested object) types ------------------------------------------------------------


@dataclasses.dataclass
class CustomType:
    """A custom object."""

    property_a: Annotated[str, "The first property"]
    property_b: int


class Address(TypedDict, total=False):
    street: str
    zip_code: int


@llm_function(name="test_custom_type_function")
def custom_type_function_tool(
    custom_array_parameter: list[CustomType],
    address: Address,
    custom_optional_array_parameter: list[CustomType] | None = None,
) -> str:
    """This is a test custom type LLM function."""
    return record(
        custom_array_parameter=custom_array_parameter,
        address=address,
        custom_optional_array_parameter=custom_optional_array_parameter,
    )


async def test_custom_type_schema_and_values() -> None:
    item_schema = {
        "type": "object",
        "properties": {
            "property_a": {"type": "string", "description": "The first property"},
            "property_b": {"type": "integer"},
        },
        "required": ["property_a", "property_b"],
        "description": "A custom object.",
    }
    assert custom_type_function_tool.parameters == {
        "type": "object",
        "properties": {
            "custom_array_parameter": {"type": "array", "items": item_schema},
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "zip_code": {"type": "integer"}},
                "required": [],
            },
            "custom_optional_array_parameter": {"type": "array", "items": item_schema},
        },
        "required": ["custom_array_parameter", "address"],
    }
    result = await call(
        custom_type_function_tool,
        {
            "custom_array_parameter": [
                {"property_a": "urlA", "property_b": 1},
                {"property_a": "urlB", "property_b": 2},
            ],
            "address": {"street": "Main St"},
        },
    )
    assert result.content == "ok"
    assert received == {
        "custom_array_parameter": [CustomType("urlA", 1), CustomType("urlB", 2)],
        "address": {"street": "Main St"},
        "custom_optional_array_parameter": None,
    }


async def test_nested_error_names_the_path() -> None:
    result = await call(
        custom_type_function_tool,
        {"custom_array_parameter": [{"property_a": "x", "property_b": "2"}], "address": {}},
    )
    assert result.is_error
    assert "'custom_array_parameter[0].property_b' must be an integer, got a string" in (
        result.content
    )


# Invalid parameters ------------------------------------------------------------------------


@llm_function(name="test_invalid_parameters_function")
def invalid_parameters_function_tool(random_parameter: str) -> str:
    """This is a test invalid parameters LLM function."""
    return record(random_parameter=random_parameter)


async def test_invalid_parameters_become_error_results() -> None:
    assert invalid_parameters_function_tool.parameters["properties"] == {
        "random_parameter": {"type": "string"}
    }
    received.clear()
    result = await call(invalid_parameters_function_tool, {"int_parameter": 12})
    assert result.is_error
    assert "unknown argument 'int_parameter'" in result.content
    assert received == {}  # the function never ran

    result = await call(invalid_parameters_function_tool, {})
    assert result.is_error and "missing required argument 'random_parameter'" in result.content

    result = await call(invalid_parameters_function_tool, {"random_parameter": 5})
    assert result.is_error and "'random_parameter' must be a string, got an integer" in (
        result.content
    )

    result = await call(invalid_parameters_function_tool, '{"random_parameter": ')
    assert result.is_error and "not valid JSON" in result.content

    result = await call(invalid_parameters_function_tool, "[1, 2]")
    assert result.is_error and "must be a JSON object" in result.content


async def test_bool_is_not_an_integer() -> None:
    result = await call(
        primitive_tool,
        {
            "int_parameter": True,
            "double_parameter": 1.0,
            "bool_parameter": True,
            "string_parameter": "x",
        },
    )
    assert result.is_error and "'int_parameter' must be an integer, got a boolean" in (
        result.content
    )


# Descriptions, async, failures ---------------------------------------------------------------


@llm_function
async def get_weather(
    city: str,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    days: Annotated[int, "How many days to forecast"] = 1,
) -> dict[str, Any]:
    """Get the current weather for a city.

    Longer explanation that is not part of the summary.

    Args:
        city: Name of the city,
            for example "Berlin".
        unit: Temperature unit of the answer.
    """
    return {"city": city, "unit": unit, "days": days, "temperature": 21}


async def test_docstring_and_annotated_descriptions_and_async_call() -> None:
    assert get_weather.description == "Get the current weather for a city."
    assert get_weather.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'Name of the city, for example "Berlin".'},
            "unit": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": "Temperature unit of the answer.",
            },
            "days": {"type": "integer", "description": "How many days to forecast"},
        },
        "required": ["city"],
    }
    result = await call(get_weather, {"city": "Berlin"})
    assert json.loads(result.content) == {
        "city": "Berlin",
        "unit": "celsius",
        "days": 1,
        "temperature": 21,
    }


def sphinx_style(city: str, limit: int = 3) -> str:
    """Look up a city.

    :param city: The city name.
    :param int limit: Result count.
    """
    return city


async def test_sphinx_docstrings_and_explicit_name() -> None:
    tool = llm_function(name="lookup", description="Custom description")(sphinx_style)
    assert tool.name == "lookup"
    assert tool.to_openai()["function"]["description"] == "Custom description"
    assert tool.parameters["properties"]["city"]["description"] == "The city name."
    assert tool.parameters["properties"]["limit"]["description"] == "Result count."
    assert tool("Rome") == "Rome"  # the tool stays callable as a function


@llm_function
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(reason)


async def test_exception_in_function_becomes_error_result() -> None:
    result = await call(explode, {"reason": "disk on fire"})
    assert result == ToolResult(
        "The function 'explode' failed: RuntimeError: disk on fire", is_error=True
    )


def test_unsupported_signatures_are_rejected_at_declaration() -> None:
    def no_hint(x):  # type: ignore[no-untyped-def]
        return x

    def var_args(*values: int) -> int:
        return 0

    def union(value: int | str) -> str:
        return ""

    def int_literal(value: Literal[1, 2]) -> str:
        return ""

    for fn in (no_hint, var_args, union, int_literal):
        with pytest.raises(FunctionSchemaError):
            llm_function(fn)
    with pytest.raises(FunctionSchemaError, match="function's schema"):
        llm_function(name="bad name!")(sphinx_style)


def test_load_tools_from_file(tmp_path: Any) -> None:
    source = tmp_path / "tools.py"
    source.write_text(
        "from backends import llm_function\n"
        "@llm_function\n"
        "def shout(text: str) -> str:\n"
        '    """Upper-case the text."""\n'
        "    return text.upper()\n"
        "def helper() -> None: ...\n"
    )
    tools = load_tools(source)
    assert [tool.name for tool in tools] == ["shout"]

    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(FunctionSchemaError, match="defines no tools"):
        load_tools(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('nope')\n")
    with pytest.raises(FunctionSchemaError, match="raised an error") as info:
        load_tools(broken)
    assert "ValueError: nope" in info.value.reason
    with pytest.raises(FunctionSchemaError, match="not found"):
        load_tools(tmp_path / "missing.py")
