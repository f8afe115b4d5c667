"""The on-device platform: GGUF models run by llama-cpp-python in engine processes.

:class:`LocalSchema` configures a model (file, context, GPU offload, sampling);
:class:`LocalPlatform` loads each model once, in an engine process of its own
(:mod:`backends.local.engine`), and shares it between sessions, whose requests the
engine answers one after the other. A crash in llama.cpp ends the engine, not the app:
the session reports it as a typed error and the next request starts a fresh engine.
This process never imports llama-cpp-python to chat.

Typical use::

    from backends import Runner
    from backends.local import LocalPlatform, LocalSchema

    async with Runner([LocalPlatform()]) as runner:
        session = runner.session(LocalSchema(model="qwen2.5-1.5b", max_tokens=256))
        session.context.append_user("Hello!")
        async for piece in session.generate():
            print(piece, end="")
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

from backends.context import Context
from backends.local.catalog import load_catalog
from backends.local.errors import CorruptModelError, EngineCrashedError, ModelNotFoundError
from backends.local.models import ModelSpec, ModelStore, parse_spec
from backends.local.process import Engine
from backends.local.safemode import SafeModeMemory
from backends.local.schema import LocalSchema
from backends.local.session import LocalSession
from backends.session import Platform

log = logging.getLogger(__name__)


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python build can offload layers to a GPU (CUDA, Metal...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def default_safe_mode_file() -> Path:
    """``<platformdirs user state dir>/local-safe-mode.json``."""
    from platformdirs import user_state_path

    return user_state_path("spezichat") / "local-safe-mode.json"


class LocalPlatform(Platform[LocalSchema]):
    """Runs :class:`LocalSchema` sessions on this machine, one engine process per model."""

    name = "local"
    schema_type = LocalSchema

    def __init__(
        self,
        *,
        store: ModelStore | None = None,
        max_loaded_models: int = 1,
        max_concurrent_streams: int = 4,
        safe_mode: SafeModeMemory | None = None,
    ) -> None:
        super().__init__(max_concurrent_streams=max_concurrent_streams)
        self.store = store or ModelStore()
        self.max_loaded_models = max(1, max_loaded_models)
        self.safe_mode = safe_mode or SafeModeMemory(default_safe_mode_file())
        """Models that load with the CPU extra buffer types off after a crash they caused."""
        self._engines: dict[tuple[Any, ...], Engine] = {}
        self._starting: list[Engine] = []
        self._lock = threading.Lock()

    def session(self, schema: LocalSchema, context: Context | None = None) -> LocalSession:
        return LocalSession(self, schema, context)

    async def list_models(self) -> list[str]:
        """Catalog ids, then downloaded hub files outside the catalog (for model pickers)."""

        def collect() -> list[str]:
            names = [entry.id for entry in load_catalog()]
            names += [m.name for m in self.store.installed() if m.entry is None]
            return names

        return await asyncio.to_thread(collect)

    @property
    def loaded(self) -> tuple[Engine, ...]:
        """The engines with a model loaded, least recently used first."""
        return tuple(engine for engine in self._engines.values() if engine.alive)

    @property
    def processes(self) -> tuple[int, ...]:
        """Process ids of the engines this platform runs, loading ones included."""
        engines = [*self._starting, *self._engines.values()]
        return tuple(engine.pid for engine in engines if engine.running)

    def engine(self, schema: LocalSchema) -> Engine:
        """The engine holding the model of ``schema``, started and loaded first if needed.

        Blocking (run it in a thread). An engine that died is replaced by a fresh one.
        """
        key = schema.load_key()
        with self._lock:
            engine = self._engines.pop(key, None)
            if engine is not None and engine.alive:
                self._engines[key] = engine  # most recently used last
                return engine
            self._evict(keep=self.max_loaded_models - 1)
            engine = self._start(schema)
            self._engines[key] = engine
            return engine

    def recover(self, schema: LocalSchema, crashed: Engine) -> Engine | None:
        """A safe-mode engine after ``crashed`` died on its first reply, where that may help.

        With ``cpu_extra_buffers = "auto"``, a crash before the first reply with llama.cpp's
        extra buffer types on is taken as theirs: the model is remembered for safe mode
        and loaded again without them. Otherwise ``None``: the crash is reported.
        """
        info = crashed.info
        if (
            schema.cpu_extra_buffers != "auto"
            or info is None
            or not info.extra_buffers
            or crashed.generations
        ):
            return None
        with self._lock:
            self._engines.pop(schema.load_key(), None)
            engine = self._start_safe(schema, crashed.path, crashed.crash)
            self._engines[schema.load_key()] = engine
            return engine

    def _start(self, schema: LocalSchema) -> Engine:
        spec = parse_spec(schema.model)
        path = self.store.resolve(spec)
        _check_gguf(path)
        request = self._load_request(schema, path)
        if request["extra_buffers"] == "auto" and self.safe_mode.is_safe_only(path):
            request["extra_buffers"] = "off"
        try:
            return self._load(path, request)
        except EngineCrashedError as crash:
            if request["extra_buffers"] != "auto":
                raise
            return self._start_safe(schema, path, crash)

    @staticmethod
    def _load_request(schema: LocalSchema, path: Path) -> dict[str, Any]:
        request = schema.load_request()
        request["catalog_chat_format"] = _catalog_chat_format(parse_spec(schema.model), path)
        return request

    def _start_safe(
        self, schema: LocalSchema, path: Path, crash: EngineCrashedError | None
    ) -> Engine:
        """Load again with the extra buffer types off, and remember that for the model."""
        why = crash.reason if crash is not None else "the engine crashed"
        # Said to the user as a notice; the log stays off the terminal.
        log.info("loading %s again in safe mode: %s", path.name, why)
        self.safe_mode.remember(path, why)
        engine = self._load(path, {**self._load_request(schema, path), "extra_buffers": "off"})
        engine.notice = (
            "llama.cpp crashed with its CPU extra buffer types on, so the model was loaded "
            "again without them (safe mode, remembered for this model; it can be slower). "
            f"What happened: {why}"
        )
        return engine

    def _load(self, path: Path, request: dict[str, Any]) -> Engine:
        engine = Engine.spawn(path)
        self._starting.append(engine)
        try:
            engine.load(request)
        finally:
            self._starting.remove(engine)
        return engine

    def _evict(self, keep: int) -> None:
        for key in list(self._engines):
            if len(self._engines) <= keep:
                break
            engine = self._engines[key]
            if not engine.alive:
                del self._engines[key]
            elif engine.busy.acquire(blocking=False):
                engine.busy.release()
                del self._engines[key]
                engine.close()

    def unload_all(self) -> None:
        """End every engine process (blocking: a few seconds at most)."""
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.unload_all)


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError as exc:
        raise ModelNotFoundError(reason=f"There is no file at {path}.") from exc
    except OSError as exc:
        raise ModelNotFoundError(reason=f"{path} cannot be read: {exc.strerror or exc}") from exc
    if magic != b"GGUF":
        raise CorruptModelError(
            "The file is not a GGUF model.",
            reason=f"{path} does not start with the GGUF signature (it starts with {magic!r}).",
            suggestion="Pass a .gguf file; other formats (safetensors, bin) need converting.",
        )


def _catalog_chat_format(spec: ModelSpec, path: Path) -> str:
    """The catalog's chat format for a catalog model, or for a file the catalog names."""
    entry = spec.entry
    if entry is None:
        entry = next((e for e in load_catalog() if e.file == path.name), None)
    return entry.chat_format if entry is not None else ""


__all__ = ["LocalPlatform", "LocalSchema", "default_safe_mode_file", "gpu_offload_supported"]
