"""The on-device engine: one llama.cpp model in a process of its own.

:class:`~backends.local.process.Engine` starts ``python -m backends.local.engine`` for
each loaded model and speaks :mod:`backends.local.protocol` with it over pipes. Whatever
llama.cpp does here (a segmentation fault in a CPU kernel, an abort on a damaged file,
the kernel's out-of-memory killer) ends this process only; the app turns it into a typed
error and starts a fresh engine for the next message.

The process reads its requests on a thread of their own, so a ``cancel`` arrives while
a reply is being generated, and the end of standard input (the app exited, however it
exited) ends the engine at once, even in the middle of a computation.
"""

from __future__ import annotations

import faulthandler
import os
import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from backends.errors import ConfigurationError, LLMError
from backends.local import safemode
from backends.local.engine_fit import MESSAGE_OVERHEAD, Model, fit_messages
from backends.local.errors import (
    ChatTemplateMissingError,
    ContextSizeError,
    CorruptModelError,
    GenerationError,
    OutOfMemoryError,
    PromptTooLongError,
)
from backends.local.formats import TRANSCRIPT, register_formats
from backends.local.protocol import decode, encode

__all__ = [
    "DEFAULT_CONTEXT_CAP",
    "DEFAULT_REPEAT_LAST_N",
    "DEFAULT_REPLY_RESERVE",
    "MESSAGE_OVERHEAD",
    "Model",
    "Send",
    "fit_messages",
    "generate",
    "known_chat_formats",
    "load",
    "main",
    "map_error",
    "serve",
]

DEFAULT_CONTEXT_CAP = 8192
"""Largest context window used when none is configured (the KV cache grows with it)."""
DEFAULT_REPLY_RESERVE = 512
"""Tokens kept free for the reply when max_tokens is unset."""
DEFAULT_REPEAT_LAST_N = 64
"""Recent tokens the repeat penalty looks at when unset (llama-cpp-python's default)."""

Send = Callable[[dict[str, Any]], None]

_ERROR_LINES: deque[str] = deque(maxlen=4)
_log_callback: Any = None


def _route_llama_logs() -> None:
    """Keep llama.cpp's log off the terminal; remember its error lines for messages."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            _ERROR_LINES.append(text.decode("utf-8", "replace").rstrip())

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_callback = callback


def _llama_errors() -> str:
    """The error lines llama.cpp logged since the last call, joined."""
    lines = [line.split(": ", 1)[-1] for line in _ERROR_LINES]
    _ERROR_LINES.clear()
    return "; ".join(dict.fromkeys(lines))


def known_chat_formats() -> list[str]:
    from llama_cpp import llama_chat_format

    register_formats()
    registry: Any = llama_chat_format.LlamaChatCompletionHandlerRegistry
    return sorted(getattr(registry(), "_chat_handlers", {}))


def _context_length(metadata: dict[str, str]) -> int:
    architecture = metadata.get("general.architecture", "")
    try:
        return int(metadata.get(f"{architecture}.context_length", "0"))
    except ValueError:
        return 0


def _check_format(name: str) -> None:
    from llama_cpp import llama_chat_format

    register_formats()
    try:
        llama_chat_format.get_chat_completion_handler(name)
    except (ValueError, llama_chat_format.LlamaChatCompletionHandlerNotFoundException) as exc:
        raise ConfigurationError(
            f"Unknown chat format '{name}'.",
            reason=f"llama-cpp-python knows: {', '.join(known_chat_formats())}.",
            suggestion="Pass one of them as chat_format, or leave it empty.",
        ) from exc


def _read_metadata(path: str, size: int) -> dict[str, str]:
    """The GGUF metadata, from a vocabulary-only load (no weights, no context)."""
    import llama_cpp

    try:
        probe = llama_cpp.Llama(path, vocab_only=True, n_ctx=64, n_batch=64, verbose=False)
    except ValueError as exc:
        raise CorruptModelError(
            reason=(
                f"llama.cpp could not read {path} ({size} bytes): {_llama_errors() or exc}. "
                "The file is truncated or damaged, or it needs a newer llama-cpp-python."
            ),
        ) from exc
    metadata = dict(probe.metadata)
    probe.close()
    return metadata


def load(request: dict[str, Any]) -> Model:
    """Open the model that a ``load`` request names, checking what can go wrong.

    The model is loaded once, with the configured context or the default cap, and then
    checked against its own metadata (trained context, chat template): a separate
    metadata read would cost as much as the load itself (its vocabulary is most of it).
    Only a configured context above the cap is checked before, so that an impossible
    one is refused without allocating it.
    """
    import llama_cpp

    path = str(request["path"])
    name = os.path.basename(path)
    _route_llama_logs()
    size = os.path.getsize(path)
    explicit_format: str | None = request.get("chat_format") or None
    catalog_format: str | None = request.get("catalog_chat_format") or None
    custom_template: str | None = request.get("chat_template") or None
    if custom_template is not None and explicit_format is not None:
        raise ConfigurationError(
            "Both a chat format and a chat template are configured.",
            reason=f"chat_format is '{explicit_format}' and chat_template is set as well.",
            suggestion="Leave one of them empty: the template replaces the format.",
        )
    for chat_format in (explicit_format, catalog_format):
        if chat_format:
            _check_format(chat_format)

    configured: int | None = request.get("n_ctx")
    if configured is not None and configured < 1:
        raise ConfigurationError(
            reason=f"The context size must be positive, not {configured}.",
            suggestion="Pass a positive number of tokens as n_ctx, or leave it unset.",
        )
    if configured is not None and configured > DEFAULT_CONTEXT_CAP:
        _context_fits(_context_length(_read_metadata(path, size)), configured, name)

    n_gpu_layers = request.get("n_gpu_layers")
    if n_gpu_layers is None:
        n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    extra_buffers, why = safemode.resolve(safemode.check_mode(request.get("extra_buffers", "auto")))

    def open_model(n_ctx: int) -> Any:
        try:
            with safemode.extra_buffer_types(extra_buffers):
                return llama_cpp.Llama(
                    path,
                    n_ctx=n_ctx,
                    n_batch=int(request.get("n_batch") or 512),
                    n_threads=request.get("n_threads"),
                    n_gpu_layers=n_gpu_layers,
                    flash_attn=bool(request.get("flash_attn")),
                    chat_format=explicit_format,
                    verbose=False,
                )
        except ValueError as exc:
            message = _llama_errors() or str(exc)
            if "context" in str(exc):
                raise OutOfMemoryError(
                    reason=f"llama.cpp could not create a {n_ctx}-token context for {name}: "
                    f"{message}",
                ) from exc
            raise CorruptModelError(
                reason=f"llama.cpp could not load {path} ({size} bytes): {message}",
            ) from exc

    n_ctx = configured or DEFAULT_CONTEXT_CAP
    llama = open_model(n_ctx)
    metadata = dict(llama.metadata)
    n_ctx_train = _context_length(metadata)
    try:
        if configured is not None:
            _context_fits(n_ctx_train, configured, name)
        elif n_ctx_train and n_ctx_train < n_ctx:
            # Trained on less than the cap (older models): use the model's own context.
            llama.close()
            n_ctx = n_ctx_train
            llama = open_model(n_ctx)
        if custom_template is not None:
            llama.chat_handler = _template_handler(llama, custom_template)
        template = custom_template or metadata.get("tokenizer.chat_template")
        chat_format = explicit_format or (None if template else catalog_format)
        if chat_format is None and not template:
            raise ChatTemplateMissingError(
                reason=(
                    f"{name} carries no chat template, so spezichat cannot tell how to "
                    "format the conversation for it."
                ),
            )
    except Exception:
        llama.close()
        raise
    # Without an explicit format llama-cpp-python uses the GGUF's template; a catalog
    # format applies where the file has none.
    llama.chat_format = chat_format or llama.chat_format
    return Model(
        llama,
        {
            "n_ctx": n_ctx,
            "n_ctx_train": n_ctx_train,
            "n_gpu_layers": n_gpu_layers,
            "chat_format": chat_format,
            "chat_template": None if chat_format else template,
            "extra_buffers": extra_buffers,
            "extra_buffers_note": why,
            "n_params": int(llama_cpp.llama_model_n_params(llama.model)),
        },
    )


def _template_handler(llama: Any, template: str) -> Any:
    """A chat handler that renders the conversation with a Jinja template string.

    The template sees what Hugging Face chat templates see: ``messages``, ``tools``,
    ``bos_token``, ``eos_token`` and ``add_generation_prompt``; it runs in Jinja's
    sandbox. Generation stops at the model's end-of-sequence token.
    """
    import jinja2
    from llama_cpp import llama_chat_format

    def text(token: int) -> str:
        if token < 0:
            return ""
        piece: bytes = llama.detokenize([token], special=True)
        return piece.decode("utf-8", "replace")

    eos = llama.token_eos()
    try:
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=text(eos),
            bos_token=text(llama.token_bos()),
            stop_token_ids=[eos] if eos >= 0 else None,
        )
    except jinja2.TemplateError as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise ConfigurationError(
            "The chat template is not a valid Jinja template.",
            reason=f"Jinja: {exc.message or exc}{where}.",
            suggestion="Fix the template (chat_template), or leave it empty to use the "
            "model's own.",
        ) from exc
    return formatter.to_chat_handler()


def _context_fits(n_ctx_train: int, configured: int, name: str) -> None:
    if n_ctx_train and configured > n_ctx_train:
        raise ContextSizeError(
            reason=(
                f"{name} was trained on {n_ctx_train} tokens of context, and {configured} "
                "are configured."
            ),
        )


def generate(model: Model, request: dict[str, Any], stop: threading.Event, send: Send) -> None:
    """Stream the reply to a ``generate`` request, ending with ``done``."""
    rid = request["id"]
    messages: list[dict[str, Any]] = request["messages"]
    tools: list[dict[str, Any]] | None = request.get("tools") or None
    max_tokens: int | None = request.get("max_tokens")
    reserve = min(max_tokens or DEFAULT_REPLY_RESERVE, model.n_ctx // 2)
    fitted, dropped = fit_messages(model, messages, tools, reserve)
    if dropped:
        send(
            {
                "ev": "notice",
                "id": rid,
                "text": f"The conversation is longer than the model's {model.n_ctx}-token "
                f"context window: the {dropped} oldest message(s) were left out of this "
                "reply (they stay in the conversation).",
            }
        )
    arguments = dict(request.get("sampling") or {})
    repeat_last_n = request.get("repeat_last_n")
    if repeat_last_n is not None and (not isinstance(repeat_last_n, int) or repeat_last_n < -1):
        raise ConfigurationError(
            reason=f"repeat_last_n must be -1 (the whole context), 0 (off) or more, "
            f"not {repeat_last_n}.",
            suggestion="Pass a number of recent tokens, or leave it unset.",
        )
    # llama-cpp-python builds the sampler of each completion from this attribute
    # (llama.cpp's penalty_last_n), so it applies to this reply only.
    model.llama.last_n_tokens_size = (
        DEFAULT_REPEAT_LAST_N if repeat_last_n is None else repeat_last_n
    )
    if tools:
        arguments["tools"] = tools
        arguments["tool_choice"] = "auto"
    stream = model.llama.create_chat_completion(messages=fitted, stream=True, **arguments)
    count = 0
    # After the transcript's cue "Assistant:" a reply starts with a space.
    leading = model.info["chat_format"] == TRANSCRIPT
    try:
        for chunk in stream:
            delta = chunk["choices"][0].get("delta") or {}
            text = delta.get("content")
            if text:
                count += 1
                if leading:
                    text = text.lstrip()
                    leading = not text
            if text:
                send({"ev": "text", "id": rid, "text": text})
            if delta.get("tool_calls"):
                send({"ev": "tool_calls", "id": rid, "deltas": delta["tool_calls"]})
            if stop.is_set():
                break
    finally:
        stream.close()
    # llama.cpp keeps the evaluated tokens: the prompt plus what it generated.
    prompt = max(int(model.llama.n_tokens) - count, 0)
    send({"ev": "done", "id": rid, "prompt": prompt, "completion": count})


def map_error(exc: BaseException) -> LLMError:
    """The typed error for what went wrong in llama-cpp-python."""
    if isinstance(exc, LLMError):
        return exc
    message = str(exc)
    if "exceed context window" in message:
        return PromptTooLongError(reason=f"llama.cpp: {message}")
    if "alternate" in message or "template" in message.lower():
        return GenerationError(
            "The model's chat template rejected the conversation.",
            reason=message,
            suggestion="Start a new chat, or choose another chat format for this model.",
        )
    if isinstance(exc, OSError) and exc.filename:
        return CorruptModelError(reason=f"{exc.filename} cannot be read: {exc.strerror or exc}")
    return GenerationError(reason=f"llama.cpp: {type(exc).__name__}: {message}")


class _Requests:
    """Reads requests on a thread; ``cancel`` acts at once, end of input ends the process."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._running: tuple[Any, threading.Event] | None = None

    def start(self) -> None:
        threading.Thread(target=self._read, name="engine-requests", daemon=True).start()

    def _read(self) -> None:
        for line in self._source:
            try:
                request = decode(line)
            except ValueError:
                continue
            if request.get("op") == "cancel":
                with self._lock:
                    if self._running is not None and self._running[0] == request.get("id"):
                        self._running[1].set()
                continue
            self._queue.put(request)
        # The app is gone (or closed the pipe): nothing is left to answer.
        os._exit(0)

    def next(self) -> dict[str, Any]:
        return self._queue.get()

    def running(self, rid: Any) -> threading.Event:
        stop = threading.Event()
        with self._lock:
            self._running = (rid, stop)
        return stop

    def finished(self) -> None:
        with self._lock:
            self._running = None


def serve(requests: _Requests, send: Send) -> int:
    """Answer requests until ``quit``; a failed load ends the process with status 3."""
    model: Model | None = None
    while True:
        request = requests.next()
        op = request.get("op")
        if op == "quit":
            return 0
        if op == "load":
            try:
                model = load(request)
            except Exception as exc:
                send({"ev": "error", "error": map_error(exc).to_dict()})
                return 3
            send({"ev": "loaded", "info": model.info})
        elif op == "generate" and model is not None:
            stop = requests.running(request.get("id"))
            try:
                generate(model, request, stop, send)
            except Exception as exc:
                send({"ev": "error", "id": request.get("id"), "error": map_error(exc).to_dict()})
            finally:
                requests.finished()


def main() -> int:
    # The protocol owns the real standard output; anything native code prints there
    # goes to standard error instead, where the app keeps it for crash reports.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl+C at the terminal is the app's to handle: it stops a reply, not the engine.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    write_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        data = encode(message)
        with write_lock:
            out.write(data)

    requests = _Requests(sys.stdin.buffer)
    requests.start()
    return serve(requests, send)


if __name__ == "__main__":
    sys.exit(main())
