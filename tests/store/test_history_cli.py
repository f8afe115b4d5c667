"""``spezichat history``: the stored data, printed to the shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.context import Context
from tui.cli import main
from tui.store import Store, default_path


def populate() -> tuple[str, str]:
    with Store.open_default() as store:
        fog = store.create_conversation("What is a fog node?", "fog", "llama3.2")
        context = Context.with_system(["Be brief."])
        context.append_user("What is a fog node?")
        context.append_assistant("A server on your local network.", complete=True)
        store.save_context(fog.id, context)
        cooking = store.create_conversation("Pancakes", "mock", "mock")
        context = Context()
        context.append_user("How do I make pancakes?")
        context.append_assistant("Flour, eggs, milk.", complete=True)
        store.save_context(cooking.id, context)
        return fog.id, cooking.id


def test_list_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    fog, cooking = populate()
    assert main(["history", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "MSGS", "MODEL", "TITLE"]
    assert lines[1].startswith(cooking[:8]) and lines[1].endswith("Pancakes")
    assert "mock/mock" in lines[1] and " 2 " in lines[1]
    assert lines[2].startswith(fog[:8]) and "fog/llama3.2" in lines[2]
    assert main(["history", "list", "--json", "-n", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(c["id"], c["title"], c["message_count"]) for c in data] == [(cooking, "Pancakes", 2)]


def test_list_empty_says_where_the_history_lives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(default_path()) in captured.err


def test_show_by_prefix_as_markdown_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    fog, _ = populate()
    assert main(["history", "show", fog[:6]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# What is a fog node?")
    assert "A server on your local network." in out
    assert main(["history", "show", fog, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["conversation"]["id"] == fog
    assert [e["role"] for e in document["entries"]] == ["system", "user", "assistant"]


def test_unknown_and_ambiguous_ids_fail_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    populate()
    with Store.open_default() as store:
        ids = [c.id for c in store.list_conversations()]
        while True:  # make two ids share a first character
            extra = store.create_conversation("extra", "mock", "m")
            ids.append(extra.id)
            shared = [i for i in ids if i[0] == extra.id[0]]
            if len(shared) > 1:
                break
    assert main(["history", "show", "zz"]) == 1
    err = capsys.readouterr().err
    assert "not a conversation id" in err and "fix:" in err
    assert main(["history", "show", "0" * 32]) == 1
    assert "No conversation id starts with" in capsys.readouterr().err
    assert main(["history", "export", extra.id[0]]) == 1
    err = capsys.readouterr().err
    assert "More than one" in err and "more characters" in err


def test_search_prints_hits_and_exits_1_without(capsys: pytest.CaptureFixture[str]) -> None:
    fog, _ = populate()
    assert main(["history", "search", "local", "network"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(fog[:8]) and "assistant" in lines[0]
    assert lines[0].endswith("What is a fog node?")
    assert lines[1].strip() == "A server on your local network."  # no marks when piped
    assert main(["history", "search", '"unbalanced']) == 1
    assert "No message matches" in capsys.readouterr().err
    assert main(["history", "search", "pancakes", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["role"] for h in hits] == ["user"]
    assert hits[0]["snippet"] == "How do I make pancakes?"


def test_export_writes_the_file_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cooking = populate()
    assert main(["history", "export", cooking[:8], "-f", "json", "-o", str(tmp_path / "out")]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == tmp_path / "out" and path.suffix == ".json"
    assert json.loads(path.read_text(encoding="utf-8"))["conversation"]["id"] == cooking


def test_damaged_database_is_reported_then_history_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = default_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    assert main(["history", "list"]) == 0
    err = capsys.readouterr().err
    assert "damaged" in err and "corrupt-" in err and "fix:" in err
    assert list(path.parent.glob("history.db.corrupt-*"))
    assert main(["history", "list"]) == 0
    assert "error:" not in capsys.readouterr().err


def test_help_names_the_store_path_in_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui", "history", "--help"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    assert f"\n  {default_path()}\n" in result.stdout
