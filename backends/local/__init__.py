"""On-device GGUF models through llama-cpp-python: platform, catalog and downloads.

Importing this package loads neither llama-cpp-python nor huggingface_hub; the names
below load their modules on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CatalogEntry": "catalog",
    "load_catalog": "catalog",
    "DownloadProgress": "download",
    "DownloadResult": "download",
    "Downloader": "download",
    "HubFile": "models",
    "ModelStore": "models",
    "parse_spec": "models",
    "LoadedModel": "platform",
    "LocalPlatform": "platform",
    "LocalSchema": "platform",
    "LocalSession": "session",
}

__all__ = [
    "CatalogEntry",
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "HubFile",
    "LoadedModel",
    "LocalPlatform",
    "LocalSchema",
    "LocalSession",
    "ModelStore",
    "load_catalog",
    "parse_spec",
]

if TYPE_CHECKING:
    from backends.local.catalog import CatalogEntry, load_catalog
    from backends.local.download import Downloader, DownloadProgress, DownloadResult
    from backends.local.models import HubFile, ModelStore, parse_spec
    from backends.local.platform import LoadedModel, LocalPlatform, LocalSchema
    from backends.local.session import LocalSession


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'backends.local' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"backends.local.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
