"""Import-isolation guarantees, each checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_backends_never_loads_the_ui() -> None:
    code = (
        "import backends, backends.context, backends.session, backends.runner, "
        "backends.functions, backends.mock, backends.errors, backends.events\n"
        "from backends import *"
    )
    modules = loaded_after(code)
    assert "textual" not in modules
    assert "tui" not in modules
    assert "backends" in modules


def test_cli_version_and_help_load_no_heavy_library() -> None:
    heavy = {"textual", "httpx", "zeroconf", "llama_cpp", "huggingface_hub", "rich"}
    for argv in (["--version"], ["--help"]):
        code = (
            f"import sys\nsys.argv = ['spezichat', *{argv!r}]\n"
            "from tui.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass"
        )
        modules = loaded_after(code)
        assert not (modules & heavy), (argv, modules & heavy)
