"""[mcp.servers.NAME] settings and `spezichat mcp import` of another client's mcpServers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.mcp import McpConfigError, import_mcp_json, parse_server, parse_servers
from tests.mcp.conftest import BOUND_S, write_config
from tui.settings import Settings, config_path

REPO = Path(__file__).resolve().parents[2]

CLAUDE = {
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"],
        },
        "github": {
            "command": "docker",
            "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
        },
        "search": {"type": "http", "url": "https://search.example/mcp", "disabled": True},
        "legacy": {"type": "sse", "url": "https://old.example/sse"},
        "broken": {"command": ["not", "a", "string"]},
    }
}


def run_import(file: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "mcp", "import", str(file), *flags],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )


def test_import_writes_servers_into_config_toml_keeping_the_users_lines(tmp_path: Path) -> None:
    write_config(
        '# my settings\n[general]\nbackend = "mock"  # for demos\n\n'
        '[mcp.servers.mine]\ncommand = "my-server"  # keep this comment\n'
    )
    file = tmp_path / "claude_desktop_config.json"
    file.write_text(json.dumps(CLAUDE), encoding="utf-8")
    result = run_import(file)
    assert result.returncode == 0, result.stderr
    assert "filesystem, github, search" in result.stdout
    assert "legacy" in result.stderr and "broken" in result.stderr
    text = config_path().read_text(encoding="utf-8")
    assert "# my settings" in text and "# for demos" in text and "# keep this comment" in text
    settings = Settings.load()
    assert settings.notice is None
    servers = settings.mcp.servers
    assert list(servers) == ["mine", "filesystem", "github", "search"]
    assert servers["github"]["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"}
    assert servers["search"] == {"url": "https://search.example/mcp", "enabled": False}
    configs, problems = parse_servers(servers)
    assert not problems and [c.transport for c in configs] == ["stdio"] * 3 + ["http"]
    again = run_import(file)  # the same names are not replaced without --replace
    assert again.returncode == 0 and "already in config.toml" in again.stderr


def test_import_of_a_file_without_servers_fails_with_a_reason(tmp_path: Path) -> None:
    file = tmp_path / "other.json"
    file.write_text('{"servers": 5}', encoding="utf-8")
    result = run_import(file)
    assert result.returncode == 1
    assert "error: The file holds no MCP servers." in result.stderr
    assert "fix:" in result.stderr
    assert not config_path().exists()


def test_server_tables_are_checked() -> None:
    with pytest.raises(McpConfigError, match="MCP server 'x'"):
        parse_server("x", {})
    for table, words in (
        ({"command": "a", "url": "http://b"}, "not both"),
        ({"command": "a", "args": "b"}, "args must be a list of strings"),
        ({"command": "a", "approve": "never"}, 'approve must be "ask" or "always"'),
        ({"command": "a", "timeout": 0}, "timeout must be a number of seconds above 0"),
        ({"url": "ftp://b"}, "http:// or https://"),
        ({"command": "a", "commnd": "b"}, "does not know: commnd"),
    ):
        with pytest.raises(McpConfigError) as error:
            parse_server("x", table)
        assert words in error.value.reason
    config = parse_server("x", {"command": "srv", "args": ["${HOME_DIR}/notes"]})
    assert config.expanded({"HOME_DIR": "/home/me"}).args == ("/home/me/notes",)
    assert config.approve == "ask" and config.enabled


def test_invalid_server_settings_fail_that_server_only() -> None:
    write_config(
        '[mcp.servers.good]\ncommand = "srv"\n\n[mcp.servers.bad]\ncommand = "a"\nurl = "http://b"\n'
    )
    settings = Settings.load()
    configs, problems = parse_servers(settings.mcp.servers)
    assert [c.name for c in configs] == ["good"] and list(problems) == ["bad"]


def test_import_json_maps_common_fields() -> None:
    tables, skipped = import_mcp_json(CLAUDE)
    assert tables["filesystem"]["command"] == "npx"
    assert [note.split(":")[0] for note in skipped] == ["legacy", "broken"]
