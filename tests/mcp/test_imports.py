"""The MCP SDK is heavy (most of a second to import): nothing loads it before a server starts."""

from __future__ import annotations

import subprocess
import sys

SDK = {"mcp", "mcp_types", "httpx2", "jsonschema", "pydantic", "starlette", "uvicorn"}
MARK = "---modules---"


def loaded_after(code: str) -> set[str]:
    """Top-level modules loaded after ``code`` (its own output, --help text, is skipped)."""
    probe = f"{code}\nimport sys\nprint({MARK!r})\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    listed = result.stdout.split(MARK, 1)[1]
    return {name.split(".")[0] for name in listed.split()}


def test_help_version_and_the_app_module_do_not_load_the_sdk() -> None:
    for argv in (["--version"], ["--help"], ["mcp", "--help"], ["ask", "--help"]):
        code = (
            f"import sys\nsys.argv = ['spezichat', *{argv!r}]\n"
            "from tui.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass"
        )
        assert not (loaded_after(code) & SDK), argv
    code = (
        "import backends.mcp, backends.mcp.manager, backends.mcp.tools, tui.app, tui.wiring\n"
        "from tui.settings import Settings\n"
        "s = Settings()\ns.mcp.servers = {'a': {'command': 'x'}}\n"
        "from tui.wiring import mcp_manager\nm = mcp_manager(s)\nm.tools()"
    )
    modules = loaded_after(code)
    assert not (modules & SDK), modules & SDK
    assert "textual" not in loaded_after("import backends.mcp.manager, backends.mcp.tools")
    # The check itself works: starting the client layer does load the SDK.
    assert "mcp" in loaded_after("import backends.mcp.connection")
