"""On-device GGUF models through llama-cpp-python: platform, catalog and downloads.

Importing this package loads neither llama-cpp-python nor huggingface_hub; the names
below load their modules on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

_EXPORTS = {
    "CatalogEntry": "catalog",
    "load_catalog": "catalog",
    "DownloadManager": "download_state",
    "DownloadPhase": "download_state",
    "DownloadState": "download_state",
    "DownloadProgress": "download",
    "DownloadResult": "download",
    "Downloader": "download",
    "HubFile": "models",
    "ModelStore": "models",
    "parse_spec": "models",
    "Engine": "process",
    "EngineInfo": "process",
    "LocalPlatform": "platform",
    "LocalSchema": "schema",
    "LocalSession": "session",
}

__all__ = [
    "CatalogEntry",
    "DownloadManager",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadResult",
    "DownloadState",
    "Downloader",
    "Engine",
    "EngineInfo",
    "HubFile",
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
    from backends.local.download_state import DownloadManager, DownloadPhase, DownloadState
    from backends.local.models import HubFile, ModelStore, parse_spec
    from backends.local.platform import LocalPlatform
    from backends.local.process import Engine, EngineInfo
    from backends.local.schema import LocalSchema
    from backends.local.session import LocalSession


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
