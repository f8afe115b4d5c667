"""The catalog data file, model names, and the models directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local.catalog import find_entry, human_size, load_catalog, starter_entry
from backends.local.errors import ModelNotFoundError, UnknownModelError
from backends.local.models import HubFile, ModelStore, default_models_dir, parse_spec
from tui.advice import cli_advice


def test_catalog_lists_the_starter_first_and_the_curated_models() -> None:
    catalog = load_catalog()
    assert catalog[0] is starter_entry() and catalog[0].is_package
    assert catalog[0].chat_format == "transcript" and "base model" in catalog[0].description
    ids = {entry.id for entry in catalog}
    for wanted in (
        "llama3.2-1b",
        "llama3.2-3b",
        "qwen2.5-0.5b",
        "qwen2.5-7b",
        "phi3.5-mini",
        "gemma2-2b",
        "mistral-7b",
        "deepseek-r1-qwen-1.5b",
    ):
        assert wanted in ids
    assert len(ids) == len(catalog)
    for entry in catalog[1:]:
        assert entry.repo.count("/") == 1 and entry.file.endswith(".gguf")
        assert entry.size_bytes > 100_000_000 and entry.context_length >= 8192
        assert entry.quant and entry.license and entry.params


def test_model_names() -> None:
    assert parse_spec("llama3.2-1b").entry is find_entry("llama3.2-1b")
    assert parse_spec("LLAMA3.2-1B").entry is not None
    hub = parse_spec("someone/Some-GGUF:model-Q4.gguf").hub
    assert hub == HubFile("someone/Some-GGUF", "model-Q4.gguf")
    assert parse_spec("someone/Some-GGUF@v2:m.gguf").hub == HubFile(
        "someone/Some-GGUF", "m.gguf", "v2"
    )
    assert parse_spec("./models/x.gguf").path == Path("models/x.gguf")
    assert parse_spec("x.gguf").path == Path("x.gguf")
    assert parse_spec("~/x.gguf").path == Path.home() / "x.gguf"
    # The catalog's hub entries also resolve from their repo:file form.
    entry = find_entry("qwen2.5-1.5b")
    assert entry is not None and parse_spec(entry.spec).entry is entry
    for bad in ("", "no-such-model", "owner:file.gguf", "a/b/c:file.gguf"):
        with pytest.raises(UnknownModelError):
            parse_spec(bad)


def test_store_paths_and_refuses_escaping_names(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    path = store.path_for(HubFile("owner/repo", "sub/m.gguf"))
    assert path == (tmp_path / "owner" / "repo" / "sub" / "m.gguf").resolve()
    with pytest.raises(UnknownModelError):
        store.path_for(HubFile("owner/repo", "../../../etc/passwd"))
    assert ModelStore().root == default_models_dir()
    assert default_models_dir().parts[-2:] == ("spezichat", "models")


def test_resolve_list_and_delete(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelNotFoundError) as not_there:
        store.resolve("llama3.2-1b")
    assert "spezichat download llama3.2-1b" in cli_advice(not_there.value)

    entry = find_entry("llama3.2-1b")
    assert entry is not None
    path = store.path_for(HubFile(entry.repo, entry.file))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF" + bytes(100))
    other = store.path_for(HubFile("me/mine", "own.gguf"))
    other.parent.mkdir(parents=True)
    other.write_bytes(b"GGUF")
    store.partial_path(other).write_bytes(b"GG")

    assert store.resolve("llama3.2-1b") == path
    assert store.resolve(f"{entry.repo}:{entry.file}") == path
    assert {m.name for m in store.installed()} == {"llama3.2-1b", "me/mine:own.gguf"}
    assert store.partial_downloads() == [store.partial_path(other)]

    removed = store.delete("me/mine:own.gguf")
    assert other in removed and store.partial_path(other) in removed
    assert not (tmp_path / "models" / "me").exists()  # emptied folders go too
    with pytest.raises(ModelNotFoundError):
        store.delete("me/mine:own.gguf")
    with pytest.raises(UnknownModelError):
        store.delete(str(tmp_path / "elsewhere.gguf"))


def test_starter_assembles_once_into_the_store(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    path = store.ensure_starter()
    assert path == store.starter_path() and path.stat().st_size == starter_entry().size_bytes
    assert store.ensure_starter() == path
    assert store.resolve("gemma3-270m-starter") == path
    assert store.read_meta(path)["source"] == "package"
    assert not list(tmp_path.rglob("*.tmp"))


def test_human_size() -> None:
    assert human_size(999) == "999 B"
    assert human_size(253_113_024) == "253.1 MB"
    assert human_size(4_680_000_000) == "4.7 GB"
