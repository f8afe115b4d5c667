"""llama.cpp's CPU extra buffer types, and the safe mode that turns them off.

When it loads a model, llama.cpp may copy the weights into "extra" CPU buffer types that
repack them for faster kernels (AMX tiles on Intel Xeons, interleaved layouts for AVX
and NEON). On some AMX CPUs the AMX path crashes the process with a segmentation fault
(ggml-org/llama.cpp#20824). Loading with the extra buffer types off avoids it, at some
cost in speed on CPUs where repacking helps.

``cpu_extra_buffers`` is ``"auto"`` (off where the build and the CPU use AMX, on
elsewhere), ``"on"`` or ``"off"``. :class:`SafeModeMemory` remembers the models whose
engine crashed with the buffers on, so that their next load is safe from the start.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from backends.errors import ConfigurationError
from backends.secrets import write_private_file

ExtraBuffers = Literal["auto", "on", "off"]
MODES: tuple[str, ...] = ("auto", "on", "off")

log = logging.getLogger(__name__)


def check_mode(mode: str) -> ExtraBuffers:
    if mode not in MODES:
        raise ConfigurationError(
            f"Unknown CPU extra-buffer mode '{mode}'.",
            reason='cpu_extra_buffers must be "auto", "on" or "off".',
            suggestion='Use "auto" (off on AMX CPUs, on elsewhere) unless you need another.',
        )
    return mode  # type: ignore[return-value]


def cpu_has_amx() -> bool:
    """Whether this CPU reports AMX (Linux: the ``amx_int8`` flag in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return any(line.startswith("flags") and "amx_int8" in line.split() for line in handle)
    except OSError:
        return False


def build_uses_amx() -> bool:
    """Whether the loaded llama.cpp build has AMX kernels and this CPU can run them.

    Imports llama-cpp-python (call it in the engine process).
    """
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return "AMX_INT8 = 1" in info and cpu_has_amx()


def resolve(mode: ExtraBuffers) -> tuple[bool, str]:
    """Whether to load with the extra buffer types, and why (for notes and logs)."""
    if mode == "on":
        return True, "CPU extra buffer types on (configured)"
    if mode == "off":
        return False, "CPU extra buffer types off (configured)"
    if build_uses_amx():
        return False, "CPU extra buffer types off: AMX CPU (safe mode)"
    return True, "CPU extra buffer types on"


@contextlib.contextmanager
def extra_buffer_types(enabled: bool) -> Iterator[None]:
    """Within the block, models load with llama.cpp's extra buffer types on or off.

    llama-cpp-python's ``Llama`` has no argument for ``use_extra_bufts``; it starts from
    ``llama_model_default_params()``, so the block hands it defaults with the field set.
    Only ever used inside an engine process, around one model load.
    """
    from llama_cpp import llama_cpp as bindings

    original = bindings.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = enabled
        return params

    bindings.llama_model_default_params = defaults
    try:
        yield
    finally:
        bindings.llama_model_default_params = original


def _identity(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    return f"{path.resolve()}:{size}"


class SafeModeMemory:
    """Models whose engine crashed with the extra buffer types on (a small JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def is_safe_only(self, model: Path) -> bool:
        return _identity(model) in self._read()

    def remember(self, model: Path, why: str) -> None:
        data = self._read()
        data[_identity(model)] = {
            "why": why,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            write_private_file(self.path, json.dumps(data, indent=2))
        except OSError as exc:  # remembering is a convenience: the load goes on
            log.info("could not record safe mode for %s: %s", model, exc)

    def models(self) -> dict[str, str]:
        """Remembered model files and why each runs in safe mode."""
        return {
            key.rsplit(":", 1)[0]: str(value.get("why", "")) if isinstance(value, dict) else ""
            for key, value in self._read().items()
        }


__all__ = [
    "MODES",
    "ExtraBuffers",
    "SafeModeMemory",
    "build_uses_amx",
    "check_mode",
    "cpu_has_amx",
    "extra_buffer_types",
    "resolve",
]
