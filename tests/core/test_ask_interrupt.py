"""One Ctrl+C at `ask`'s "run it? [y/N]" question ends the process at once (issue #13).

The question waits for a line from the terminal on a thread. That thread must not keep
the process alive once Ctrl+C cancelled the reply: the real `ask` runs on a real
pseudo-terminal that is its controlling terminal, so ^C reaches it as SIGINT.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.openai_server import OpenAITestServer, Reply, ScriptedCall, openai_server
from tests.support.terminal import terminal

__all__ = ["openai_server"]

TOOLS = '''
from backends import llm_function


@llm_function
def remove(path: str) -> str:
    """Remove a file.

    Args:
        path: The file.
    """
    return f"removed {path}"
'''


def test_one_ctrl_c_at_the_approval_question_exits_130(
    openai_server: OpenAITestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools.py"
    tools.write_text(TOOLS)
    openai_server.script(Reply(tool_calls=[ScriptedCall("remove", {"path": "notes.txt"})]))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    args = ("ask", "-b", "openai", "-m", "gpt-test", "--tools", str(tools), "Tidy up")
    with terminal(args, controlling=True) as term:
        term.wait_for(lambda: "run it? [y/N]" in term.text(), "the approval question")
        term.type("\x03")  # Ctrl+C: the terminal sends SIGINT to the foreground group
        assert term.wait_exit() == 130
    assert len(openai_server.chat_requests) == 1  # nothing ran, nothing was sent after
