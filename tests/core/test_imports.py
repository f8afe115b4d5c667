"""Import-isolation guarantees, each checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BACKENDS = Path(__file__).resolve().parents[2] / "backends"
PLATFORM_PACKAGES = sorted(
    f"backends.{path.parent.name}" for path in BACKENDS.glob("*/__init__.py")
)
"""Every package under ``backends``: openai, fog, local, mcp (as they are on disk)."""


def modules_after(code: str) -> set[str]:
    """Every module name loaded after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def loaded_after(code: str) -> set[str]:
    """The top-level packages loaded after running ``code`` in a fresh interpreter."""
    return {name.split(".")[0] for name in modules_after(code)}


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


def test_the_platform_packages_are_all_checked() -> None:
    assert {"backends.openai", "backends.fog", "backends.local"} <= set(PLATFORM_PACKAGES)


@pytest.mark.parametrize("package", PLATFORM_PACKAGES)
def test_no_backend_package_loads_the_ui(package: str) -> None:
    """The package, its lazy exports and every one of its modules: no tui, no textual."""
    code = (
        "import importlib, pkgutil\n"
        f"package = importlib.import_module({package!r})\n"
        f"from {package} import *\n"
        f"for found in pkgutil.walk_packages(package.__path__, {package + '.'!r}):\n"
        "    importlib.import_module(found.name)"
    )
    loaded = modules_after(code)
    submodules = {path.stem for path in (BACKENDS / package.split(".")[1]).glob("*.py")}
    missing = {f"{package}.{name}" for name in submodules - {"__init__"}} - loaded
    assert not missing, f"the probe did not import {sorted(missing)}"
    ui = sorted(name for name in loaded if name.split(".")[0] in {"tui", "textual"})
    assert not ui, f"importing {package} loads {ui}"


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
