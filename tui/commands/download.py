"""``spezichat download``: fetch an on-device model, list and delete downloaded ones."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download an on-device model (GGUF) with a progress bar; resumes",
        description=(
            "Download a GGUF model for the local backend into the models folder. MODEL is "
            "a catalog id (see `spezichat models --backend local --long`) or "
            "'owner/repo:file.gguf' on the Hugging Face hub. An interrupted download "
            "resumes where it stopped; the file is checked against the hub's SHA-256. "
            "HF_TOKEN opens gated models, HF_ENDPOINT picks another hub, HF_HUB_OFFLINE "
            "forbids downloading. The file's path is printed on stdout. Exit codes: 0 ok, "
            "1 failure, 2 usage, 130 interrupted."
        ),
    )
    parser.add_argument("model", nargs="?", help="catalog id or owner/repo:file.gguf")
    parser.add_argument("--delete", action="store_true", help="delete the downloaded model instead")
    parser.add_argument(
        "--list", action="store_true", help="list downloaded models and unfinished downloads"
    )


def _store(settings: Any) -> Any:
    from backends.local.models import ModelStore

    return ModelStore(settings.local.models_dir or None)


def run(args: argparse.Namespace) -> int:
    from backends.errors import LLMError
    from tui.commands.common import fail, load_settings, usage_error

    settings = load_settings()
    if settings is None:
        return 1
    store = _store(settings)
    if args.list:
        return _list(store)
    if not args.model:
        return usage_error("download", "name a model (a catalog id or owner/repo:file.gguf)")
    try:
        if args.delete:
            for path in store.delete(args.model):
                print(f"deleted {path}")
            return 0
        return _download(store, args.model)
    except LLMError as error:
        return fail(error)


def _list(store: Any) -> int:
    from backends.local.catalog import human_size

    for model in store.installed():
        print(f"{model.name}\t{human_size(model.size)}\t{model.path}")
    for partial in store.partial_downloads():
        print(f"(unfinished)\t{human_size(partial.stat().st_size)}\t{partial}")
    return 0


def _download(store: Any, name: str) -> int:
    import sys

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from backends.local.catalog import human_size
    from backends.local.download import Downloader, DownloadProgress
    from backends.local.errors import UnknownModelError
    from backends.local.models import parse_spec
    from backends.untrusted import one_line

    console = Console(stderr=True)
    spec = parse_spec(name)
    if spec.path is not None:
        raise UnknownModelError(
            f"'{name}' is a file path, not a model to download.",
            reason="Local files are used where they are.",
            suggestion=f"Use it directly: spezichat ask --backend local --model {name} ...",
        )
    if spec.entry is not None and spec.entry.is_package:
        path = store.ensure_starter()
        console.print(
            f"{spec.entry.name} ships with spezichat; it is ready (no download).", markup=False
        )
        print(path)
        return 0
    hub = spec.hub_file
    assert hub is not None
    downloader = Downloader(store)
    # The label is a catalog name or what the user typed (`owner/repo:x[1].gguf`): shown
    # as typed, never parsed as Rich markup.
    label = one_line(spec.entry.name if spec.entry is not None else hub.spec)
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def show(progress: DownloadProgress) -> None:
            bar.update(task, total=progress.total, completed=progress.downloaded)

        try:
            result = downloader.download(hub, progress=show)
        except KeyboardInterrupt:
            bar.stop()
            kept = downloader.partial_size(hub)
            console.print(
                f"Download stopped; {human_size(kept)} kept. Run the same command to resume."
            )
            return 130
    if result.already_present:
        console.print(f"{label} is already downloaded.", markup=False)
    elif result.resumed_from:
        console.print(
            f"Resumed at {human_size(result.resumed_from)}; fetched the remaining "
            f"{human_size(result.fetched)}. SHA-256 verified."
        )
    else:
        console.print(f"Downloaded {human_size(result.size)}. SHA-256 verified.")
    print(result.path)
    sys.stdout.flush()
    return 0


async def list_local(settings: Any) -> list[tuple[str, str]]:
    """Catalog models (with their download state) and other downloaded GGUF files."""
    from backends.local.catalog import human_size, load_catalog

    store = _store(settings)
    installed = store.installed()
    present = {model.entry.id: model for model in installed if model.entry is not None}
    safe = _safe_mode_notes(settings, installed)
    rows: list[tuple[str, str]] = []
    for entry in load_catalog():
        if entry.is_package:
            state = "bundled (offline)"
        else:
            state = "downloaded" if entry.id in present else "not downloaded"
        on_disk = present.get(entry.id)
        details = [
            entry.name,
            human_size(entry.size_bytes),
            entry.quant,
            _parameters(on_disk.path) if on_disk else f"{entry.params} parameters",
            f"ctx {entry.context_length}",
            entry.license,
            state,
        ]
        if entry.id in safe:
            details.append(safe[entry.id])
        rows.append((entry.id, " · ".join(details)))
    for model in installed:
        if model.entry is None:
            detail = f"{human_size(model.size)} · {_parameters(model.path)} · downloaded"
            detail += f" · {model.path}"
            if model.name in safe:
                detail += f" · {safe[model.name]}"
            rows.append((model.name, detail))
    return rows


def _parameters(path: Any) -> str:
    """The parameter count in a GGUF file's header (no weights are loaded)."""
    from backends.errors import LLMError
    from backends.local.gguf import describe_count, parameter_count

    try:
        count = parameter_count(path)
    except LLMError:
        return "parameters unknown (unreadable file)"
    return f"{describe_count(count)} parameters ({count:,})"


def _safe_mode_notes(settings: Any, installed: list[Any]) -> dict[str, str]:
    """Models that load with llama.cpp's CPU extra buffer types off, and why."""
    from backends.local.catalog import load_catalog
    from backends.local.platform import default_safe_mode_file
    from backends.local.safemode import SafeModeMemory, cpu_has_amx

    mode = settings.local.cpu_extra_buffers
    names = [entry.id for entry in load_catalog()] + [m.name for m in installed]
    if mode == "off":
        return dict.fromkeys(names, "safe mode: CPU extra buffers off (configured)")
    if mode != "auto":
        return {}
    if cpu_has_amx():
        return dict.fromkeys(names, "safe mode: CPU extra buffers off (AMX CPU)")
    remembered = SafeModeMemory(default_safe_mode_file()).models()
    return {
        model.name: "safe mode: CPU extra buffers off (the engine crashed with them on)"
        for model in installed
        if str(model.path.resolve()) in remembered
    }
