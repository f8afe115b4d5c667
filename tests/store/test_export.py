"""Markdown and JSON export of stored conversations, to strings and to files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.context import Context, ToolCall
from tui.export import export_filename, export_json, export_markdown, export_to_file
from tui.store import ConversationNotFoundError, Store, StoreError


def stored(store: Store) -> tuple[str, Context]:
    conversation = store.create_conversation("Weather / Zürich?", "openai", "gpt-4o-mini")
    context = Context.with_system(["Be brief."])
    context.append_user("Weather in Zürich?")
    context.append_tool_calls([ToolCall("c1", "get_weather", '{"city":"Zürich"}')])
    context.append_tool_result("c1", "get_weather", "sunny ``` 21")
    context.append_assistant("It is **sunny**.\n\n```python\nprint(21)\n```", complete=True)
    context.append_user("Tomorrow?")
    context.append_assistant("Tomorrow it will", complete=False)
    context.mark_interrupted("stopped")
    store.save_context(conversation.id, context)
    return conversation.id, context


def test_markdown_reads_like_the_conversation(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation_id, _ = stored(store)
        conversation = store.get_conversation(conversation_id)
        assert conversation is not None
        text = export_markdown(conversation, store.load_context(conversation_id))
    assert text.startswith("# Weather / Zürich?\n")
    assert "- Backend: openai" in text and "- Model: gpt-4o-mini" in text
    assert conversation_id in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## System",
        "## User",
        "## Assistant",
        "## Tool result: get_weather",
        "## Assistant",
        "## User",
        "## Assistant",
    ]
    assert '**Tool call:** `get_weather`\n\n```json\n{\n  "city": "Zürich"\n}\n```' in text
    # A fence longer than the backticks inside the tool result keeps it intact.
    assert "````\nsunny ``` 21\n````" in text
    assert "It is **sunny**.\n\n```python\nprint(21)\n```" in text
    assert text.rstrip().endswith("Tomorrow it will\n\n*(reply stopped by the user)*")


def test_json_is_lossless_with_metadata(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation_id, context = stored(store)
        conversation = store.get_conversation(conversation_id)
        assert conversation is not None
        document = json.loads(export_json(conversation, store.load_context(conversation_id)))
    assert document["format"] == "spezichat-conversation" and document["version"] == 1
    assert document["conversation"]["id"] == conversation_id
    assert document["conversation"]["title"] == "Weather / Zürich?"
    assert document["conversation"]["model"] == "gpt-4o-mini"
    assert document["conversation"]["message_count"] == 6
    assert Context.from_list(document["entries"]).to_list() == context.to_list()


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_export_to_file_creates_the_folder_and_names_the_file(tmp_path: Path, fmt: str) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation_id, _ = stored(store)
        target = tmp_path / "exports" / "nested"
        path = export_to_file(store, conversation_id, target, fmt)  # type: ignore[arg-type]
        assert path.parent == target
        assert path.name.endswith(f"-weather-zürich-{conversation_id[:8]}.{fmt}")
        content = path.read_text(encoding="utf-8")
        assert "Weather in Zürich?" in content
        # Exporting again replaces the same file; no temporary files are left.
        assert export_to_file(store, conversation_id, target, fmt) == path  # type: ignore[arg-type]
        assert [p.name for p in target.iterdir()] == [path.name]


def test_export_errors_are_clear(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation_id, _ = stored(store)
        with pytest.raises(ConversationNotFoundError):
            export_to_file(store, "0" * 32, tmp_path, "md")
        with pytest.raises(StoreError, match="format"):
            export_to_file(store, conversation_id, tmp_path, "pdf")  # type: ignore[arg-type]
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        with pytest.raises(StoreError) as caught:
            export_to_file(store, conversation_id, blocker, "md")
        assert caught.value.description == "The conversation could not be exported."
        assert "a-file" in caught.value.reason


def test_filename_falls_back_for_titles_without_letters(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation = store.create_conversation("???", "mock", "m")
    assert export_filename(conversation, "md").endswith(f"-conversation-{conversation.id[:8]}.md")


def test_empty_conversation_exports(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        conversation = store.create_conversation("Empty", "mock", "m")
        assert export_markdown(conversation, Context()).startswith("# Empty")
        assert json.loads(export_json(conversation, Context()))["entries"] == []
