"""How much memory this machine can give a model, and whether a catalog model fits.

Used for the "fits / tight / too big" hints next to each catalog model. Free RAM comes
from ``/proc/meminfo`` (Linux) or ``sysconf``; free VRAM from ``nvidia-smi`` when the
llama-cpp-python build can offload to a GPU and an NVIDIA driver is present (on Apple
silicon the GPU shares the RAM). Everything here is best effort and returns ``None``
when it cannot tell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from backends.local.catalog import CatalogEntry, human_size


def available_ram() -> int | None:
    """Bytes of memory available to a new process without swapping, if known."""
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    names = ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES") if sys.platform != "darwin" else ("SC_PHYS_PAGES",)
    for name in names:
        try:
            return int(os.sysconf(name)) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            continue
    return None


def free_vram() -> int | None:
    """Free memory of the first NVIDIA GPU in bytes, if ``nvidia-smi`` can tell."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        result = subprocess.run(
            [tool, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return int(result.stdout.split()[0]) * 1024 * 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Memory:
    """What a model can use here."""

    ram: int | None
    vram: int | None
    gpu_build: bool

    @classmethod
    def probe(cls) -> Memory:
        from backends.local.platform import gpu_offload_supported

        gpu = gpu_offload_supported()
        return cls(ram=available_ram(), vram=free_vram() if gpu else None, gpu_build=gpu)

    def describe(self) -> str:
        parts = [f"{human_size(self.ram)} RAM free" if self.ram else "free RAM unknown"]
        if self.vram is not None:
            parts.append(f"{human_size(self.vram)} VRAM free")
        parts.append("GPU build" if self.gpu_build else "CPU-only build")
        return " · ".join(parts)


def fit_hint(entry: CatalogEntry, memory: Memory) -> tuple[str, str]:
    """("fits" | "tight" | "too big" | "unknown", a short explanation) for ``entry``."""
    need = entry.ram_bytes
    if memory.vram is not None and need <= memory.vram:
        return "fits", f"fits in VRAM ({human_size(need)} of {human_size(memory.vram)})"
    if memory.ram is None:
        return "unknown", f"needs about {human_size(need)} of memory"
    if need <= memory.ram * 0.7:
        return "fits", f"fits in RAM ({human_size(need)} of {human_size(memory.ram)} free)"
    if need <= memory.ram:
        return "tight", f"tight: needs {human_size(need)}, {human_size(memory.ram)} free"
    return "too big", f"too big: needs {human_size(need)}, {human_size(memory.ram)} free"
