"""Constraints on function parameters (SpeziLLM's ``@Parameter`` options), ``dict[str, T]``
and hand-written schemas: the exact schema the model is sent, and what happens to a value
that breaks a constraint (it goes back to the model as an error result, and the function
does not run)."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

import pytest
from annotated_types import Ge, Gt, Interval, Le, Len, Lt, MaxLen, MinLen, MultipleOf, Predicate

from backends.context import Role
from backends.events import ToolCallResult
from backends.functions import (
    Const,
    Format,
    FunctionSchemaError,
    JSONSchema,
    Pattern,
    Tool,
    ToolResult,
    UniqueItems,
    llm_function,
)
from backends.mock import MockPlatform, MockResponse, MockSchema
from backends.openai import OpenAIPlatform, OpenAISchema, RetryPolicy
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, spec_errors

received: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _forget_calls() -> None:
    received.clear()


@llm_function
def pick(count: Annotated[int, "How many to pick", Ge(1), Le(10)]) -> str:
    """Pick some items."""
    received.append({"count": count})
    return f"picked {count}"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: Annotated[int, Ge(0)]
    y: int


@llm_function
def everything(
    ratio: Annotated[float, Interval(gt=0, lt=1), MultipleOf(0.05)],
    step: Annotated[int, Gt(0), Lt(100), MultipleOf(5)],
    code: Annotated[str, Pattern(r"^[A-Z]{3}$"), Len(3, 3)],
    name: Annotated[str, "Who", MinLen(1), MaxLen(20)],
    mode: Annotated[str, Const("fast")],
    day: Annotated[str, Format("date")],
    tags: Annotated[list[str], MinLen(1), MaxLen(3), UniqueItems()],
    scores: dict[str, Annotated[int, Ge(0)]],
    colors: Annotated[dict[str, Color], MaxLen(2)],
    points: dict[str, Point],
    when: Annotated[
        date, "A day", JSONSchema({"type": "string", "format": "date"}, convert=date.fromisoformat)
    ],
    raw: Annotated[Any, JSONSchema({"type": "object", "properties": {"a": {"type": "integer"}}})],
    limit: Annotated[int, Ge(1)] | None = None,
) -> str:
    """Take every kind of constrained parameter."""
    received.append(dict(locals()))
    return "ok"


EVERYTHING_PARAMETERS = {
    "type": "object",
    "properties": {
        "ratio": {
            "type": "number",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 1,
            "multipleOf": 0.05,
        },
        "step": {
            "type": "integer",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 100,
            "multipleOf": 5,
        },
        "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
        "name": {"type": "string", "minLength": 1, "maxLength": 20, "description": "Who"},
        "mode": {"type": "string", "const": "fast"},
        "day": {"type": "string", "format": "date"},
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 3,
            "uniqueItems": True,
        },
        "scores": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "colors": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": ["red", "blue"]},
            "maxProperties": 2,
        },
        "points": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"x": {"type": "integer", "minimum": 0}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            },
        },
        "when": {"type": "string", "format": "date", "description": "A day"},
        "raw": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "limit": {"type": "integer", "minimum": 1},
    },
    "required": [
        "ratio",
        "step",
        "code",
        "name",
        "mode",
        "day",
        "tags",
        "scores",
        "colors",
        "points",
        "when",
        "raw",
    ],
}

VALID = {
    "ratio": 0.35,
    "step": 95,
    "code": "ABC",
    "name": "Ada",
    "mode": "fast",
    "day": "2024-02-29",
    "tags": ["a", "b", "c"],
    "scores": {"math": 0, "art": 7},
    "colors": {"sky": "blue"},
    "points": {"home": {"x": 0, "y": -3}},
    "when": "2024-03-01",
    "raw": {"a": 1, "anything": [True]},
}


async def invoke(tool: Tool, arguments: dict[str, Any]) -> ToolResult:
    return await tool.invoke(json.dumps(arguments))


def test_constraints_are_written_into_the_schema() -> None:
    assert pick.to_openai() == {
        "type": "function",
        "function": {
            "name": "pick",
            "description": "Pick some items.",
            "parameters": {
                "type": "object",
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10,
                        "description": "How many to pick",
                    }
                },
                "required": ["count"],
            },
        },
    }
    assert everything.parameters == EVERYTHING_PARAMETERS
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [pick.to_openai(), everything.to_openai()],
    }
    assert spec_errors(request) == []


async def test_valid_values_are_converted() -> None:
    assert await invoke(everything, {**VALID, "limit": 3}) == ToolResult("ok")
    (values,) = received
    assert values["when"] == date(2024, 3, 1)
    assert values["colors"] == {"sky": Color.BLUE}
    assert values["points"] == {"home": Point(0, -3)}
    assert values["scores"] == {"math": 0, "art": 7}
    assert values["raw"] == {"a": 1, "anything": [True]}  # passed through
    assert values["limit"] == 3 and values["ratio"] == 0.35
    assert await invoke(everything, {**VALID, "limit": None}) == ToolResult("ok")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ratio": 0}, "'ratio' must be greater than 0, got 0"),
        ({"ratio": 1.0}, "'ratio' must be less than 1, got 1.0"),
        ({"ratio": 0.33}, "'ratio' must be a multiple of 0.05, got 0.33"),
        ({"step": 100}, "'step' must be less than 100, got 100"),
        ({"step": 7}, "'step' must be a multiple of 5, got 7"),
        ({"code": "abc"}, "'code' must match the pattern '^[A-Z]{3}$', got \"abc\""),
        ({"code": "ABCD"}, "'code' must match the pattern '^[A-Z]{3}$', got \"ABCD\""),
        ({"name": ""}, "'name' must have at least 1 character, got 0"),
        ({"name": "x" * 21}, "'name' must have at most 20 characters, got 21"),
        ({"mode": "slow"}, '\'mode\' must be "fast", got "slow"'),
        ({"day": "2024-02-30"}, "'day' must be a date, got \"2024-02-30\""),
        ({"day": "29.02.2024"}, "'day' must be a date, got \"29.02.2024\""),
        ({"tags": []}, "'tags' must have at least 1 item, got 0"),
        ({"tags": ["a", "b", "c", "d"]}, "'tags' must have at most 3 items, got 4"),
        ({"tags": ["a", "b", "a"]}, "'tags' must have unique items, but items 0 and 2 are equal"),
        ({"tags": ["a", 1]}, "'tags[1]' must be a string, got an integer"),
        ({"scores": {"math": -1}}, "'scores.math' must be at least 0, got -1"),
        ({"scores": {"math": "A"}}, "'scores.math' must be an integer, got a string"),
        ({"scores": [1]}, "'scores' must be an object, got an array"),
        ({"colors": {"a": "red", "b": "red", "c": "red"}}, "'colors' must have at most 2 entries"),
        ({"colors": {"a": "green"}}, "'colors.a' must be one of 'red', 'blue', got 'green'"),
        ({"points": {"p": {"x": -1, "y": 0}}}, "'points.p.x' must be at least 0, got -1"),
        ({"when": "2024-13-01"}, "'when' is not valid: ValueError: month must be in 1..12"),
        ({"when": 20240301}, "'when' must be a string, got an integer"),
        ({"raw": "text"}, "'raw' must be an object, got a string"),
        ({"limit": 0}, "'limit' must be at least 1, got 0"),
    ],
)
async def test_a_violation_is_an_error_result_and_the_function_does_not_run(
    change: dict[str, Any], message: str
) -> None:
    result = await invoke(everything, {**VALID, **change})
    assert result.is_error
    assert result.content.startswith(f"Invalid arguments for function 'everything': {message}")
    assert received == []


@llm_function
def json_values(
    pair: Annotated[list[Any], UniqueItems()], same: Annotated[Any, Const([1, {"a": True}])]
) -> str:
    """JSON equality."""
    received.append({"pair": pair})
    return "ok"


async def test_unique_items_and_const_compare_as_json_does() -> None:
    # 1 and 1.0 are the same JSON number; true is not 1.
    ok = await invoke(json_values, {"pair": [1, True, "1"], "same": [1.0, {"a": True}]})
    assert ok == ToolResult("ok")
    assert (await invoke(json_values, {"pair": [1, 1.0], "same": [1, {"a": True}]})).is_error
    assert (await invoke(json_values, {"pair": [], "same": [1, {"a": 1}]})).is_error
    assert (await invoke(json_values, {"pair": [{"a": [1]}, {"a": [1.0]}], "same": 0})).is_error
    assert json_values.parameters["properties"]["same"] == {"const": [1, {"a": True}]}


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("date-time", "2024-02-29T13:45:00Z", "2024-02-29 13:45"),
        ("time", "13:45:00", "25:00"),
        ("duration", "P1DT2H", "P"),
        ("email", "ada@example.org", "ada.example.org"),
        ("hostname", "node-1.local", "-bad-.local"),
        ("ipv4", "192.168.0.1", "192.168.0.256"),
        ("ipv6", "fe80::1", "fe80:::1"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000"),
        ("uri", "https://example.org/x", "example org"),
    ],
)
async def test_formats_are_checked(name: str, good: str, bad: str) -> None:
    def fn(value: str) -> str:
        return value

    fn.__annotations__ = {"value": Annotated[str, Format(name)], "return": str}
    tool = Tool(fn)
    assert tool.parameters["properties"]["value"] == {"type": "string", "format": name}
    assert await invoke(tool, {"value": good}) == ToolResult(good)
    result = await invoke(tool, {"value": bad})
    assert result.is_error and f"'value' must be a {name}" in result.content


def test_constraints_that_do_not_fit_are_rejected_at_declaration() -> None:
    def on_text(value: Annotated[str, Ge(1)]) -> None: ...
    def length_of_number(value: Annotated[int, MaxLen(3)]) -> None: ...
    def twice(value: Annotated[int, Ge(1), Ge(2)]) -> None: ...
    def bad_regex(value: Annotated[str, Pattern("(")]) -> None: ...
    def unknown_format(value: Annotated[str, Format("color")]) -> None: ...
    def unique_text(value: Annotated[str, UniqueItems()]) -> None: ...
    def predicate(value: Annotated[int, Predicate(lambda v: v > 0)]) -> None: ...
    def zero_step(value: Annotated[int, MultipleOf(0)]) -> None: ...
    def int_keys(value: dict[int, str]) -> None: ...
    def bare_date(value: date) -> None: ...
    def not_json(value: Annotated[int, Const(date(2024, 1, 1))]) -> None: ...

    for fn in (
        on_text,
        length_of_number,
        twice,
        bad_regex,
        unknown_format,
        unique_text,
        predicate,
        zero_step,
        int_keys,
        bare_date,
        not_json,
    ):
        with pytest.raises(FunctionSchemaError) as info:
            llm_function(fn)
        assert info.value.reason.startswith("'value': "), (fn.__name__, info.value.reason)
    with pytest.raises(FunctionSchemaError, match="schema"):
        JSONSchema({"type": "string", "default": date(2024, 1, 1)})


async def test_optional_hand_written_schemas() -> None:
    def outside(day: Annotated[date, JSONSchema({"type": "string"})] | None = None) -> str:
        return repr(day)

    def inside(day: Annotated[date | None, JSONSchema({"type": "string"})]) -> str:
        return repr(day)

    for fn in (outside, inside):
        tool = Tool(fn)
        assert tool.parameters == {
            "type": "object",
            "properties": {"day": {"type": "string"}},
            "required": [],  # Optional: the model may leave it out
        }
        assert await invoke(tool, {"day": None}) == ToolResult("None")
        assert await invoke(tool, {"day": "2024-01-01"}) == ToolResult("'2024-01-01'")


# The model gets the error, through a real session ---------------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server
        assert not server.spec_violations, server.spec_violations


async def test_a_violating_call_goes_back_to_the_model_over_http(server: OpenAITestServer) -> None:
    server.script(
        Reply(tool_calls=[ScriptedCall("pick", {"count": 500}, id="call_1")]),
        Reply(tool_calls=[ScriptedCall("pick", {"count": 5}, id="call_2")]),
        Reply(text="Picked five."),
    )
    platform = OpenAIPlatform(
        base_url=server.base_url,
        api_key="sk-test-key",
        retry=RetryPolicy(max_attempts=1),
    )
    try:
        schema = OpenAISchema(
            model="gpt-test", functions=(pick, everything), test_model_access=False
        )
        session = platform.session(schema)
        session.context.append_user("Pick some.")
        events = [event async for event in session.stream()]
    finally:
        await platform.aclose()
    first, second, third = server.chat_requests
    assert first.body["tools"] == [pick.to_openai(), everything.to_openai()]
    assert first.body["tools"][1]["function"]["parameters"] == EVERYTHING_PARAMETERS
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Invalid arguments for function 'pick': 'count' must be at most 10, got 500.",
    }
    assert third.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_2",
        "content": "picked 5",
    }
    assert received == [{"count": 5}]  # the function never saw 500
    results = [event for event in events if isinstance(event, ToolCallResult)]
    assert [r.is_error for r in results] == [True, False]
    assert session.context[-1].content == "Picked five."


async def test_a_violating_call_goes_back_to_the_mock_model() -> None:
    schema = MockSchema(
        delay=0,
        functions=(pick,),
        responses=(
            MockResponse(tool_calls=(("pick", {"count": 0}),)),
            MockResponse(text="Sorry."),
        ),
    )
    session = MockPlatform().session(schema)
    session.context.append_user("Pick none.")
    events = [event async for event in session.stream()]
    (result,) = [event for event in events if isinstance(event, ToolCallResult)]
    assert result.is_error
    assert result.content == (
        "Invalid arguments for function 'pick': 'count' must be at least 1, got 0."
    )
    tool_entries = [entry for entry in session.context if entry.role is Role.TOOL]
    assert [entry.content for entry in tool_entries] == [result.content]
    assert received == []
