"""Streaming, parameters and the tool loop against the loopback server."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from backends import Context, Role, llm_function
from backends.events import (
    Notice,
    StateChanged,
    TextDelta,
    ToolCallRequested,
    ToolCallResult,
    Usage,
)
from backends.openai import OpenAIPlatform, OpenAISchema, ResponseFormat
from backends.state import LLMState
from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, spec_errors

REPLY = "Fog nodes run models on your own network, close to you. **Fast**, private\nand local."


@llm_function
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather for a city.

    Args:
        city: Name of the city.
        unit: Temperature unit.
    """
    return f"{city}: 21 degrees {unit}, sunny"


async def test_each_piece_is_yielded_as_soon_as_it_arrives(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    # A server that sends a chunk every 50 ms, like a model generating: every chunk must
    # reach the caller on its own, before the next one is even sent.
    openai_server.script(Reply(text="alpha beta gamma delta", chunk_size=6, delay=0.05))
    session = platform.session(OpenAISchema(model="gpt-test"))
    session.context.append_user("go")
    pieces = [piece async for piece in session.generate()]
    assert pieces == ["alpha ", "beta g", "amma d", "elta"]


async def test_text_arrives_in_many_pieces_and_exactly(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(text=REPLY, chunk_size=2))
    session = platform.session(OpenAISchema(model="gpt-test", system_prompts=("Be brief.",)))
    session.context.append_user("What is a fog node?")
    events = [event async for event in session.stream()]
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(pieces) == REPLY
    # Chunks that arrive together may be handed out together, never split or reordered.
    assert 1 <= len(pieces) <= (len(REPLY) + 1) // 2
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1 and usage[0].completion_tokens == (len(REPLY) + 1) // 2
    assert session.last_usage == usage[0]
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == [LLMState.LOADING, LLMState.GENERATING, LLMState.READY]
    reply = session.context[-1]
    assert (reply.role, reply.content, reply.complete) == (Role.ASSISTANT, REPLY, True)
    # The model access test ran first, then one streamed chat request.
    paths = [(r.method, r.path) for r in openai_server.requests]
    assert paths == [("GET", "/v1/models/gpt-test"), ("POST", "/v1/chat/completions")]
    body = openai_server.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is a fog node?"},
    ]
    assert openai_server.chat_requests[0].bearer == "sk-test-key"


async def test_model_access_is_tested_once_and_can_be_switched_off(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    for _ in range(2):
        session = platform.session(OpenAISchema(model="gpt-test"))
        session.context.append_user("hi")
        assert "".join([p async for p in session.generate()]) == "Echo: hi"
    session = platform.session(OpenAISchema(model="not-listed", test_model_access=False))
    session.context.append_user("ho")
    assert "".join([p async for p in session.generate()]) == "Echo: ho"
    gets = [r.path for r in openai_server.requests if r.method == "GET"]
    assert gets == ["/v1/models/gpt-test"]


async def test_every_model_parameter_is_sent_and_conforms_to_the_spec(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    formats = [
        None,
        ResponseFormat(),
        ResponseFormat.json_object(),
        ResponseFormat.json_schema(
            "weather",
            {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        ),
    ]
    for response_format in formats:
        schema = OpenAISchema(
            model="gpt-test",
            temperature=0.3,
            top_p=0.9,
            stop=("END", "\n\n"),
            max_tokens=64,
            seed=42,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            logit_bias={"50256": -100, "13": 5},
            response_format=response_format,
            functions=(get_weather,),
            test_model_access=False,
        )
        session = platform.session(schema)
        session.context.append_user("Weather in Berlin as JSON?")
        async for _ in session.generate():
            pass
    bodies = [r.body for r in openai_server.chat_requests]
    assert len(bodies) == 4
    for body in bodies:
        assert spec_errors(body) == []
        assert body["temperature"] == 0.3 and body["top_p"] == 0.9
        assert body["stop"] == ["END", "\n\n"] and body["max_completion_tokens"] == 64
        assert body["seed"] == 42 and body["logit_bias"] == {"50256": -100, "13": 5}
        assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, -0.5)
        assert body["tools"][0]["function"]["name"] == "get_weather"
    assert "response_format" not in bodies[0]
    assert [b["response_format"]["type"] for b in bodies[1:]] == [
        "text",
        "json_object",
        "json_schema",
    ]
    assert bodies[3]["response_format"]["json_schema"]["strict"] is True


def test_the_spec_check_catches_a_wrong_body() -> None:
    # The validator the server applies really rejects what the API would reject.
    assert spec_errors({"model": "m", "messages": []})
    assert spec_errors({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": "2"})
    assert spec_errors({"model": "m", "messages": [{"role": "robot", "content": "x"}]})
    assert not spec_errors({"model": "m", "messages": [{"role": "user", "content": "x"}]})


async def test_tool_call_arguments_are_assembled_and_the_result_sent_back(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    arguments = {"city": "Berlin", "unit": "fahrenheit"}
    openai_server.script(
        Reply(
            text="Let me check. ",
            tool_calls=[ScriptedCall("get_weather", arguments, id="call_w1")],
            arguments_chunk_size=3,
        ),
        Reply(text="It is sunny in Berlin."),
    )
    session = platform.session(OpenAISchema(model="gpt-test", functions=(get_weather,)))
    session.context.append_user("Weather in Berlin?")
    events = [event async for event in session.stream()]
    requested = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert len(requested) == 1
    assert requested[0].id == "call_w1" and json.loads(requested[0].arguments) == arguments
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert results[0].content == "Berlin: 21 degrees fahrenheit, sunny" and results[0].approved
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Let me check. It is sunny in Berlin."

    first, second = openai_server.chat_requests
    assert first.body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    messages = second.body["messages"]
    assert messages[-2] == {
        "role": "assistant",
        "content": "Let me check. ",
        "tool_calls": [
            {
                "id": "call_w1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps(arguments)},
            }
        ],
    }
    assert messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_w1",
        "content": "Berlin: 21 degrees fahrenheit, sunny",
    }
    assert session.context[-1].content == "It is sunny in Berlin."


async def test_parallel_tool_calls_and_a_refusing_approver(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(
        Reply(
            tool_calls=[
                ScriptedCall("get_weather", {"city": "Paris"}),
                ScriptedCall("get_weather", {"city": "Rome"}),
            ]
        ),
        Reply(text="Done."),
    )
    asked: list[str] = []

    async def approver(call: object) -> bool:
        arguments = json.loads(call.arguments)  # type: ignore[attr-defined]
        asked.append(arguments["city"])
        return bool(arguments["city"] == "Paris")

    session = platform.session(OpenAISchema(model="gpt-test", functions=(get_weather,)))
    session.approver = approver
    session.context.append_user("Paris and Rome?")
    assert "".join([p async for p in session.generate()]) == "Done."
    assert asked == ["Paris", "Rome"]
    tool_messages = [
        m for m in openai_server.chat_requests[1].body["messages"] if m["role"] == "tool"
    ]
    assert tool_messages[0] == {
        "role": "tool",
        "tool_call_id": "call_test_0",
        "content": "Paris: 21 degrees celsius, sunny",
    }
    assert tool_messages[1]["tool_call_id"] == "call_test_1"
    assert "declined" in tool_messages[1]["content"]


async def test_cut_off_at_the_token_limit_is_reported(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    openai_server.script(Reply(text="A long story that", finish_reason="length"))
    session = platform.session(OpenAISchema(model="gpt-test", max_tokens=4))
    session.context.append_user("Tell me a story.")
    events = [event async for event in session.stream()]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("token limit" in text for text in notices)
    assert session.context[-1].content == "A long story that"


async def test_a_server_that_ignores_stream_true_still_works(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    # Some compatible servers answer with one JSON object even when asked to stream.
    openai_server.script(
        Reply(
            body={
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-test",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Whole reply."},
                        "finish_reason": "stop",
                    }
                ],
            }
        )
    )
    session = platform.session(OpenAISchema(model="gpt-test"))
    session.context.append_user("hi")
    assert "".join([p async for p in session.generate()]) == "Whole reply."


async def test_a_continued_context_is_sent_in_order(
    platform: OpenAIPlatform, openai_server: OpenAITestServer
) -> None:
    context = Context.with_system(["sys"])
    context.append_user("one")
    context.append_assistant("first answer", complete=True)
    session = platform.session(OpenAISchema(model="gpt-test"), context)
    session.context.append_user("two")
    assert "".join([p async for p in session.generate()]) == "Echo: two"
    roles = [m["role"] for m in openai_server.chat_requests[0].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


async def test_list_models(platform: OpenAIPlatform, openai_server: OpenAITestServer) -> None:
    openai_server.models = ["zeta", "alpha", "gpt-test"]
    models = await platform.list_models()
    assert [m.id for m in models] == ["alpha", "gpt-test", "zeta"]
    assert models[0].owned_by == "spezichat-tests"


@pytest.mark.parametrize("value", [-0.1, 2.5])
def test_out_of_range_parameters_are_rejected_with_a_clear_error(value: float) -> None:
    from backends.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        OpenAISchema(model="gpt-test", temperature=value)
    assert "temperature" in info.value.description and "between 0 and 2" in info.value.reason
