"""Recognising function calls in local model output, as it streams."""

from __future__ import annotations

import json

import pytest

from backends.local.toolcalls import ToolCallScanner, parse_tool_calls


def scan(pieces: list[str]) -> tuple[str, list[tuple[str, dict[str, object]]]]:
    scanner = ToolCallScanner()
    shown = "".join(scanner.feed(piece) for piece in pieces)
    rest, calls = scanner.finish()
    return shown + rest, [(c.name, json.loads(c.arguments)) for c in calls]


def test_plain_text_streams_through_at_once() -> None:
    scanner = ToolCallScanner()
    assert scanner.feed("Hello") == "Hello"
    assert scanner.feed(" world.") == " world."
    assert scanner.finish() == ("", ())


def test_qwen_style_tagged_calls_split_across_pieces() -> None:
    pieces = [
        "<tool",
        "_call>\n",
        '{"name": "get_weather", ',
        '"arguments": {"city": "Bern"}}',
        "\n</tool_call>",
    ]
    assert scan(pieces) == ("", [("get_weather", {"city": "Bern"})])


def test_text_before_a_tagged_call_is_shown() -> None:
    text, calls = scan(
        ["Let me check. <", "tool_call>", '{"name": "f", "arguments": {}}</tool_call>']
    )
    assert text == "Let me check. " and calls == [("f", {})]


def test_several_tagged_calls() -> None:
    body = (
        '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": {"y": 2}}</tool_call>'
    )
    assert [c.name for c in parse_tool_calls(body)] == ["a", "b"]


def test_mistral_and_llama_forms() -> None:
    mistral = '[TOOL_CALLS] [{"name": "add", "arguments": {"a": 2, "b": 3}}]'
    assert scan([mistral[:9], mistral[9:]]) == ("", [("add", {"a": 2, "b": 3})])
    llama = '{"name": "add", "parameters": {"a": 2, "b": 3}}'
    assert scan(list(llama)) == ("", [("add", {"a": 2, "b": 3})])
    tagged = '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {}}'
    assert [c.name for c in parse_tool_calls(tagged)] == ["a", "b"]


@pytest.mark.parametrize(
    "reply",
    [
        '{"answer": 42}',  # JSON, but not a call
        "<tool_call>not json</tool_call>",
        "Use a [TOOL_CALLS marker? no.",
        "a < b and <tool is not a tag",
    ],
)
def test_text_that_is_not_a_call_is_never_lost(reply: str) -> None:
    text, calls = scan([reply[: len(reply) // 2], reply[len(reply) // 2 :]])
    assert text == reply and calls == []


def test_call_ids_are_unique() -> None:
    body = '<tool_call>{"name": "a", "arguments": {}}</tool_call>' * 2
    first, second = parse_tool_calls(body)
    assert first.id != second.id and first.id.startswith("call_")
