from __future__ import annotations

from datetime import datetime, timezone

from backends.context import Context, ContextEntry, Role, ToolCall


def test_streaming_appends_to_the_open_assistant_entry() -> None:
    context = Context.with_system(["Be brief."])
    context.append_user("Hi")
    for piece in ["Hel", "lo", " there"]:
        context.append_assistant(piece)
    assert len(context) == 3
    reply = context[-1]
    assert (reply.role, reply.content, reply.complete) == (Role.ASSISTANT, "Hello there", False)
    context.complete_assistant()
    assert reply.complete and reply.finish_reason == "stop"
    # A completed reply is not extended: the next output starts a new entry.
    context.append_assistant("Again", complete=True)
    assert len(context) == 4 and context[-1].content == "Again"


def test_overwrite_replaces_the_streaming_text() -> None:
    context = Context()
    context.append_user("x")
    context.append_assistant("draft")
    context.append_assistant("final", overwrite=True, complete=True)
    assert context[-1].content == "final" and context[-1].complete


def test_system_prompts_go_after_existing_ones_and_survive_reset() -> None:
    context = Context.with_system(["first"])
    context.append_user("hello")
    context.append_system("second")
    context.append_system("late", at_start=False)
    assert [e.content for e in context] == ["first", "second", "hello", "late"]
    context.reset()
    assert [e.content for e in context] == ["first", "second", "late"]


def test_tool_calls_absorb_streamed_text_and_map_to_openai_messages() -> None:
    context = Context.with_system(["sys"])
    context.append_user("Weather in Berlin?")
    context.append_assistant("Let me check. ")
    call = ToolCall("call_1", "get_weather", '{"city": "Berlin"}')
    context.append_tool_calls([call])
    context.append_tool_result("call_1", "get_weather", "21 degrees")
    context.append_assistant("It is 21 degrees.", complete=True)
    assert context.to_messages() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Weather in Berlin?"},
        {
            "role": "assistant",
            "content": "Let me check. ",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Berlin"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"},
        {"role": "assistant", "content": "It is 21 degrees."},
    ]


def test_json_round_trip_is_lossless() -> None:
    context = Context.with_system(["sys"])
    context.append_user("ünïcode ✓", created=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
    context.append_tool_calls([ToolCall("c1", "f", "{}")])
    context.append_tool_result("c1", "f", "result")
    context.append_assistant("partial")
    context.mark_interrupted("stopped")
    restored = Context.from_json(context.to_json())
    assert restored == context
    assert restored[-1].finish_reason == "stopped" and not restored[-1].complete
    assert restored[1].created == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert restored[2].tool_calls == (ToolCall("c1", "f", "{}"),)


def test_remove_last_reply_for_retry_and_empty_incomplete_reply_not_sent() -> None:
    context = Context()
    context.append_user("one")
    context.append_assistant("answer one", complete=True)
    context.append_user("two")
    context.append_assistant("half")
    removed = context.remove_last_reply()
    assert [e.content for e in removed] == ["half"]
    assert context[-1].content == "two"
    context.append_assistant("")
    assert context.to_messages()[-1] == {"role": "user", "content": "two"}


def test_long_stream_content_is_joined_lazily() -> None:
    entry = ContextEntry(Role.ASSISTANT, complete=False)
    for _ in range(10_000):
        entry.append_text("ab")
    assert len(entry.content) == 20_000
    entry.append_text("c")
    assert entry.content.endswith("abc")
