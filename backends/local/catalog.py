"""The curated catalog of on-device models, read from ``catalog.toml`` beside this file."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CatalogEntry:
    """One model of the catalog."""

    id: str
    """Short name used on the command line (``spezichat download llama3.2-1b``)."""
    name: str
    """Human-readable name."""
    repo: str
    """Hugging Face repository id; empty for a model shipped as a Python package."""
    file: str
    """GGUF file name inside the repository (or the package)."""
    size_bytes: int
    """Approximate download size; the hub's metadata is authoritative."""
    quant: str
    """Quantization, for example Q4_K_M."""
    params: str
    """Parameter count as usually written (1B, 3.8B)."""
    context_length: int
    """Context the model was trained on, in tokens."""
    license: str
    """License note; read the model card before using the model."""
    description: str = ""
    chat_format: str = ""
    """llama-cpp-python chat format to use when the GGUF carries no template."""
    tools: bool = False
    """Whether the model's chat template can express function calls."""
    source: str = "hub"
    """"hub" (downloaded) or "package" (assembled from an installed Python package)."""
    package: str = ""
    """Import name of the package that ships the file (source "package")."""

    @property
    def is_package(self) -> bool:
        return self.source == "package"

    @property
    def spec(self) -> str:
        """The ``repo_id:filename`` form of a hub model."""
        return f"{self.repo}:{self.file}" if self.repo else self.id

    @property
    def ram_bytes(self) -> int:
        """Rough memory needed to run it: the weights plus room for a modest context."""
        return int(self.size_bytes * 1.2) + 300 * 1024 * 1024


@functools.cache
def load_catalog() -> tuple[CatalogEntry, ...]:
    """All catalog entries, in catalog order (the offline starter first)."""
    from importlib.resources import files

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    text = files("backends.local").joinpath("catalog.toml").read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return tuple(CatalogEntry(**item) for item in data["model"])


def find_entry(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name`` (its id, case-insensitive) or whose file it is."""
    wanted = name.strip().lower()
    for entry in load_catalog():
        if entry.id.lower() == wanted or (entry.repo and entry.spec.lower() == wanted):
            return entry
    return None


def starter_entry() -> CatalogEntry:
    """The offline starter model (the first entry)."""
    return next(entry for entry in load_catalog() if entry.is_package)


def human_size(size: float) -> str:
    """``1_120_000_000`` -> ``"1.1 GB"`` (decimal units, as download sizes are shown)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover
