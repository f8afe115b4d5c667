"""Markdown export: headings inside a message go below the message's own ``##`` heading.

A reply that starts with ``# Plan`` must not sit at the document's level (next to the
conversation's title) nor at the level of the ``## Assistant`` sections: an outline or
a table of contents of the export would mix them up. Code blocks keep their lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from backends.context import Context
from tui.export import export_markdown
from tui.store import Store

REPLY = "\n".join(
    [
        "# Plan",
        "First the overview.",
        "## Step one",
        "###### Deepest",
        "#hashtag is no heading",
        "",
        "```python",
        "# a comment, not a heading",
        "print(1)",
        "```",
        "",
        "~~~~",
        "```",
        "# still code: this fence is closed by tildes only",
        "```",
        "~~~~",
        "",
        "Setext title",
        "============",
        "",
        "Second",
        "------",
        "",
        "---",
        "",
        "Done.",
    ]
)


def exported(tmp_path: Path, reply: str, user: str = "# My question") -> str:
    with Store(tmp_path / "h.db") as store:
        conversation = store.create_conversation("Headings", "openai", "gpt-test")
        context = Context()
        context.append_user(user)
        context.append_assistant(reply, complete=True)
        store.save_context(conversation.id, context)
        stored = store.get_conversation(conversation.id)
        assert stored is not None
        return export_markdown(stored, store.load_context(conversation.id))


def headings(text: str) -> list[str]:
    """The ATX headings outside fenced code blocks."""
    found: list[str] = []
    fence = ""
    for line in text.splitlines():
        opening = re.match(r"^(`{3,}|~{3,})", line)
        if fence:
            bare = line.strip()
            if len(bare) >= len(fence) and bare == fence[0] * len(bare):
                fence = ""
        elif opening:
            fence = opening.group(1)
        elif re.match(r"^#{1,6} ", line):
            found.append(line)
    return found


def test_headings_in_messages_are_demoted_below_the_message_heading(tmp_path: Path) -> None:
    # A fence left open (a reply stopped mid-way) runs to the end of its message only.
    text = exported(tmp_path, REPLY, user="# My question\n\n```sh\n# install\npip install x")
    assert headings(text) == [
        "# Headings",
        "## User",
        "### My question",
        "## Assistant",
        "### Plan",
        "#### Step one",
        "###### Deepest",  # as deep as Markdown goes
        "### Setext title",
        "#### Second",
    ]
    assert "```sh\n# install\npip install x\n```\n\n## Assistant" in text  # closed
    assert "#hashtag is no heading" in text
    assert "```python\n# a comment, not a heading\nprint(1)\n```" in text
    assert "```\n# still code: this fence is closed by tildes only\n```" in text
    assert "\n---\n\nDone." in text  # a thematic break stays one


def test_demoted_text_is_still_neutralised(tmp_path: Path) -> None:
    text = exported(tmp_path, "# Title \x1b]52;c;aGVsbG8=\x07\r\nbody", user="Hi")
    assert "### Title ␛]52;c;aGVsbG8=␇\nbody" in text
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
