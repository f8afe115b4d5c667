"""The on-device platform: GGUF models run in-process with llama-cpp-python.

:class:`LocalSchema` configures a model (file, context, GPU offload, sampling);
:class:`LocalPlatform` loads each model once and shares it between sessions, with one
llama.cpp context per loaded model and its calls serialized by a lock. llama-cpp-python
is imported only when a model loads.

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
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.context import Context
from backends.errors import ConfigurationError
from backends.local.catalog import load_catalog
from backends.local.errors import (
    ChatTemplateMissingError,
    ContextSizeError,
    CorruptModelError,
    ModelNotFoundError,
    OutOfMemoryError,
)
from backends.local.models import ModelSpec, ModelStore, parse_spec
from backends.session import Platform, Schema

DEFAULT_CONTEXT_CAP = 8192
"""Largest context window used when none is configured (the KV cache grows with it)."""
log = logging.getLogger(__name__)

TOOL_CHAT_FORMATS = ("chatml-function-calling", "functionary", "functionary-v1", "functionary-v2")
"""llama-cpp-python chat formats that parse tool calls themselves."""


@dataclass(frozen=True, kw_only=True)
class LocalSchema(Schema):
    """Configuration of an on-device model. Unset values use the model's or llama.cpp's."""

    model: str
    """A .gguf path, a catalog id (``llama3.2-1b``) or ``repo_id:filename`` (downloaded)."""
    chat_format: str = ""
    """llama-cpp-python chat format ("chatml", "gemma", ...); empty uses the GGUF's template."""
    n_gpu_layers: int | None = None
    """Layers offloaded to the GPU (-1 all, 0 none); unset: all when a GPU build is present."""
    n_ctx: int | None = None
    """Context window in tokens; unset: the trained context, capped at 8192."""
    n_batch: int = 512
    """Prompt tokens processed per batch."""
    n_threads: int | None = None
    """CPU threads; unset lets llama.cpp choose."""
    seed: int | None = None
    """Sampling seed for reproducible replies; unset draws a random one."""
    flash_attn: bool = False
    """Use flash attention (faster on GPUs that support it)."""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None
    """Longest reply in tokens; unset: until the model stops or the context is full."""
    stop: tuple[str, ...] = ()
    """Strings that end the reply when the model writes them."""

    def sampling(self) -> dict[str, Any]:
        """The sampling arguments for ``create_chat_completion`` that are set."""
        values: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        arguments = {key: value for key, value in values.items() if value is not None}
        if self.stop:
            arguments["stop"] = list(self.stop)
        return arguments

    def load_key(self) -> tuple[Any, ...]:
        """What identifies one loaded llama.cpp context."""
        return (
            self.model,
            self.chat_format,
            self.n_gpu_layers,
            self.n_ctx,
            self.n_batch,
            self.n_threads,
            self.flash_attn,
        )


_ERROR_LINES: deque[str] = deque(maxlen=4)
_log_callback: Any = None


def _route_llama_logs() -> None:
    """Send llama.cpp's log to the ``logging`` module instead of the terminal.

    Error lines are also kept so that load failures can say what llama.cpp found.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            _ERROR_LINES.append(message)
        log.debug("llama.cpp: %s", message)

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_callback = callback


def _llama_errors() -> str:
    """The error lines llama.cpp logged since the last call, joined."""
    lines = [line.split(": ", 1)[-1] for line in _ERROR_LINES]
    _ERROR_LINES.clear()
    return "; ".join(dict.fromkeys(lines))


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python build can offload layers to a GPU (CUDA, Metal...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def known_chat_formats() -> list[str]:
    from llama_cpp import llama_chat_format

    from backends.local.formats import register_formats

    register_formats()
    registry: Any = llama_chat_format.LlamaChatCompletionHandlerRegistry
    return sorted(getattr(registry(), "_chat_handlers", {}))


class LoadedModel:
    """One llama.cpp model with its context; ``lock`` serializes every call into it."""

    def __init__(
        self,
        *,
        path: Path,
        llama: Any,
        n_ctx: int,
        n_ctx_train: int,
        n_gpu_layers: int,
        chat_format: str | None,
        chat_template: str | None,
    ) -> None:
        self.path = path
        self.llama = llama
        self.n_ctx = n_ctx
        self.n_ctx_train = n_ctx_train
        self.n_gpu_layers = n_gpu_layers
        self.chat_format = chat_format
        """The explicit llama-cpp-python chat format, or ``None`` for the GGUF template."""
        self.chat_template = chat_template
        self.lock = threading.Lock()
        self.closed = False
        # Every generation runs on this one thread: llama.cpp's OpenMP thread team is
        # per calling thread, so a long-lived thread keeps it warm between replies.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spezichat-llama")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def supports_tools(self) -> bool:
        """Whether the chat template can express function calls."""
        if self.chat_format is not None:
            return self.chat_format in TOOL_CHAT_FORMATS
        return self.chat_template is not None and "tools" in self.chat_template

    @property
    def parses_tool_calls(self) -> bool:
        """Whether llama-cpp-python itself turns the output into ``tool_calls``."""
        return self.chat_format in TOOL_CHAT_FORMATS

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes (call with :attr:`lock` held)."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def close(self) -> None:
        """Free the model and its context (waits for a running generation to end)."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.llama.close()
        self.executor.shutdown(wait=False)


class LocalPlatform(Platform[LocalSchema]):
    """Runs :class:`LocalSchema` sessions on this machine."""

    name = "local"
    schema_type = LocalSchema

    def __init__(
        self,
        *,
        store: ModelStore | None = None,
        max_loaded_models: int = 1,
        max_concurrent_streams: int = 4,
    ) -> None:
        super().__init__(max_concurrent_streams=max_concurrent_streams)
        self.store = store or ModelStore()
        self.max_loaded_models = max(1, max_loaded_models)
        self._models: dict[tuple[Any, ...], LoadedModel] = {}
        self._models_lock = threading.Lock()

    def session(self, schema: LocalSchema, context: Context | None = None) -> Any:
        from backends.local.session import LocalSession

        return LocalSession(self, schema, context)

    async def list_models(self) -> list[str]:
        """Catalog ids, then downloaded hub files outside the catalog (for model pickers)."""

        def collect() -> list[str]:
            names = [entry.id for entry in load_catalog()]
            names += [m.name for m in self.store.installed() if m.entry is None]
            return names

        return await asyncio.to_thread(collect)

    @property
    def loaded(self) -> tuple[LoadedModel, ...]:
        return tuple(self._models.values())

    def model(self, schema: LocalSchema) -> LoadedModel:
        """The loaded model for ``schema``, loading it first (blocking: run in a thread)."""
        key = schema.load_key()
        with self._models_lock:
            model = self._models.get(key)
            if model is not None and not model.closed:
                # Most recently used last.
                self._models[key] = self._models.pop(key)
                return model
            self._evict(keep=self.max_loaded_models - 1)
            model = load_model(schema, self.store)
            self._models[key] = model
            return model

    def _evict(self, keep: int) -> None:
        for key in list(self._models):
            if len(self._models) <= keep:
                break
            model = self._models[key]
            if model.lock.acquire(blocking=False):
                model.lock.release()
                del self._models[key]
                model.close()

    def unload_all(self) -> None:
        """Free every loaded model (blocking: waits for running generations)."""
        with self._models_lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            model.close()

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


def _context_length(metadata: dict[str, str]) -> int:
    architecture = metadata.get("general.architecture", "")
    try:
        return int(metadata.get(f"{architecture}.context_length", "0"))
    except ValueError:
        return 0


def load_model(schema: LocalSchema, store: ModelStore) -> LoadedModel:
    """Resolve, check and load the model of ``schema`` (blocking)."""
    import llama_cpp
    from llama_cpp import llama_chat_format

    from backends.local.formats import register_formats

    spec = parse_spec(schema.model)
    path = store.resolve(spec)
    _check_gguf(path)
    _route_llama_logs()
    _llama_errors()
    size = path.stat().st_size
    try:
        # The vocabulary-only load reads the metadata without allocating a context.
        probe = llama_cpp.Llama(str(path), vocab_only=True, n_ctx=64, n_batch=64, verbose=False)
    except ValueError as exc:
        found = _llama_errors() or str(exc)
        raise CorruptModelError(
            reason=(
                f"llama.cpp could not read {path} ({size} bytes): {found}. The file is "
                "truncated or damaged, or it needs a newer llama-cpp-python."
            ),
        ) from exc
    metadata = dict(probe.metadata)
    probe.close()

    n_ctx_train = _context_length(metadata)
    if schema.n_ctx is not None:
        if schema.n_ctx < 1:
            raise ConfigurationError(
                reason=f"The context size must be positive, not {schema.n_ctx}.",
                suggestion="Set local.n_ctx to a positive number of tokens, or leave it unset.",
            )
        if n_ctx_train and schema.n_ctx > n_ctx_train:
            raise ContextSizeError(
                reason=(
                    f"{path.name} was trained on {n_ctx_train} tokens of context, and "
                    f"{schema.n_ctx} are configured."
                ),
            )
        n_ctx = schema.n_ctx
    else:
        n_ctx = min(n_ctx_train or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)

    template = metadata.get("tokenizer.chat_template")
    chat_format = schema.chat_format or (None if template else _catalog_chat_format(spec, path))
    if chat_format:
        register_formats()
        try:
            llama_chat_format.get_chat_completion_handler(chat_format)
        except (ValueError, llama_chat_format.LlamaChatCompletionHandlerNotFoundException) as exc:
            raise ConfigurationError(
                f"Unknown chat format '{chat_format}'.",
                reason=f"llama-cpp-python knows: {', '.join(known_chat_formats())}.",
                suggestion="Set local.chat_format to one of them, or leave it empty.",
            ) from exc
    elif not template:
        raise ChatTemplateMissingError(
            reason=(
                f"{path.name} carries no chat template, so spezichat cannot tell how to "
                "format the conversation for it."
            ),
        )

    n_gpu_layers = schema.n_gpu_layers
    if n_gpu_layers is None:
        n_gpu_layers = -1 if gpu_offload_supported() else 0
    try:
        llama = llama_cpp.Llama(
            str(path),
            n_ctx=n_ctx,
            n_batch=schema.n_batch,
            n_threads=schema.n_threads,
            n_gpu_layers=n_gpu_layers,
            flash_attn=schema.flash_attn,
            chat_format=chat_format or None,
            verbose=False,
        )
    except ValueError as exc:
        message = _llama_errors() or str(exc)
        if "context" in str(exc):
            raise OutOfMemoryError(
                reason=(
                    f"llama.cpp could not create a {n_ctx}-token context for {path.name}: {message}"
                ),
            ) from exc
        raise CorruptModelError(
            reason=f"llama.cpp could not load {path} ({size} bytes): {message}",
        ) from exc
    return LoadedModel(
        path=path,
        llama=llama,
        n_ctx=n_ctx,
        n_ctx_train=n_ctx_train,
        n_gpu_layers=n_gpu_layers,
        chat_format=chat_format or None,
        chat_template=None if chat_format else template,
    )
