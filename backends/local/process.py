"""The app's side of an engine process: start it, talk to it, notice when it dies.

:class:`Engine` runs ``python -m backends.local.engine`` (see :mod:`backends.local.engine`)
with pipes for its standard streams. A thread reads its answers and hands each one to
the generation waiting for it; when the process ends without being asked to, the thread
turns the exit status into an :class:`~backends.local.errors.EngineCrashedError` that
names the signal, and hands that over instead. Standard error is kept (the last lines)
for the crash report, never shown on the terminal.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from backends.errors import LLMError
from backends.local.errors import EngineCrashedError, ModelNotReadyError
from backends.local.formats import TOOL_CHAT_FORMATS
from backends.local.protocol import decode, encode, error_from_dict

log = logging.getLogger(__name__)

Put = Callable[[str, Any], None]
"""Receives ``(kind, value)`` for one generation: text, notice, tool_calls, done, error."""

CLOSE_TIMEOUT = 5.0
"""Seconds a closing engine may take to exit before it is killed."""
_CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
_MARKERS = ("GGML_ASSERT", "GGML_ABORT", "terminate called", "what():", "error:", "Error:")


@dataclass(frozen=True)
class EngineInfo:
    """What the engine found when it loaded the model."""

    n_ctx: int
    n_ctx_train: int
    n_gpu_layers: int
    chat_format: str | None
    """The explicit llama-cpp-python chat format, or ``None`` for the GGUF template."""
    chat_template: str | None
    extra_buffers: bool
    """Whether llama.cpp's CPU extra buffer types are in use (off in safe mode)."""
    extra_buffers_note: str
    n_params: int = 0
    """The model's parameter count (llama.cpp's ``llama_model_n_params``)."""

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineInfo:
        return cls(
            n_ctx=int(data["n_ctx"]),
            n_ctx_train=int(data.get("n_ctx_train") or 0),
            n_gpu_layers=int(data.get("n_gpu_layers") or 0),
            chat_format=data.get("chat_format"),
            chat_template=data.get("chat_template"),
            extra_buffers=bool(data.get("extra_buffers")),
            extra_buffers_note=str(data.get("extra_buffers_note") or ""),
            n_params=int(data.get("n_params") or 0),
        )


def engine_command() -> list[str]:
    return [sys.executable, "-m", "backends.local.engine"]


def child_environment() -> dict[str, str]:
    """The app's environment, with this copy of ``backends`` first on the import path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def describe_exit(returncode: int) -> tuple[str, str | None]:
    """("killed by SIGSEGV (segmentation fault)" or "exited with status 1", signal name)."""
    if returncode < 0:
        try:
            number = signal.Signals(-returncode)
        except ValueError:
            return f"was killed by signal {-returncode}", None
        text = (signal.strsignal(number) or "").lower()
        return f"was killed by {number.name}" + (f" ({text})" if text else ""), number.name
    return f"exited with status {returncode}", None


class Engine:
    """One engine process holding one model. Thread-safe; not bound to an event loop."""

    def __init__(self, path: Path, process: subprocess.Popen[bytes]) -> None:
        self.path = path
        self.process = process
        self.info: EngineInfo | None = None
        self.busy = threading.Lock()
        """Held for one generation; released when the engine has answered it in full."""
        self.generations = 0
        """Generations the engine finished (a crash before the first one hints at the CPU)."""
        self.crash: EngineCrashedError | None = None
        self.notice = ""
        """Something the user should hear about this engine (shown once by a session)."""
        self._state = threading.Lock()
        self._closing = False
        self._ids = itertools.count(1)
        self._current: tuple[int, Put] | None = None
        self._control: queue.Queue[LLMError | EngineInfo] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=60)
        self._phase = "while loading the model"
        self._stderr_reader = threading.Thread(
            target=self._read_stderr, name=f"spezichat-engine-stderr-{process.pid}", daemon=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the process has not exited (loading, serving or closing)."""
        if self.process.returncode is not None:
            return False
        if not hasattr(os, "waitid"):  # macOS
            return self.process.poll() is None
        try:
            # The answer reader may be waiting for the exit status right now, which makes
            # Popen.poll() say nothing; WNOWAIT looks without taking the status away.
            ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return ended is None

    @property
    def alive(self) -> bool:
        """Whether the engine can take a request (checked without reaping the process)."""
        return self.crash is None and not self._closing and self.running

    @property
    def name(self) -> str:
        return self.path.name

    # Starting --------------------------------------------------------------------------
    @classmethod
    def spawn(cls, path: Path) -> Engine:
        """Start an engine process for ``path`` (not loaded yet: call :meth:`load`)."""
        process = subprocess.Popen(
            engine_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(),
            # Terminal signals (Ctrl+C, a closing SSH session) are the app's to handle;
            # the engine ends when the app's end closes its standard input.
            start_new_session=True,
        )
        engine = cls(path, process)
        engine._stderr_reader.start()
        threading.Thread(
            target=engine._read_answers, name=f"spezichat-engine-{process.pid}", daemon=True
        ).start()
        return engine

    def load(self, request: dict[str, Any]) -> EngineInfo:
        """Send the load request and wait for the answer (blocking)."""
        self._send({"op": "load", "path": str(self.path), **request})
        answer = self._control.get()
        if isinstance(answer, LLMError):
            self.close()
            raise answer
        self.info = answer
        self._phase = "while it was idle"
        return answer

    # Generating ------------------------------------------------------------------------
    def begin(self, request: dict[str, Any], put: Put) -> int:
        """Start a generation; the caller holds :attr:`busy`, which the engine releases.

        Every event of the generation goes to ``put``, ending with ``done`` or ``error``.
        """
        with self._state:
            if self.crash is not None or self._closing:
                self.busy.release()
                raise self.crash or ModelNotReadyError(
                    reason="The model was unloaded before the reply."
                )
            rid = next(self._ids)
            self._current = (rid, put)
            self._phase = "while it generated the reply"
        self._send({"op": "generate", "id": rid, **request})
        return rid

    def cancel(self, rid: int) -> None:
        """Ask the engine to end generation ``rid`` after the current token."""
        self._send({"op": "cancel", "id": rid})

    # Ending ----------------------------------------------------------------------------
    def close(self) -> None:
        """End the process and free its memory (blocking, at most a few seconds)."""
        with self._state:
            self._closing = True
        self._send({"op": "quit"})
        stdin = self.process.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self.process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # Internals -------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None:
            return
        try:
            stdin.write(encode(message))
            stdin.flush()
        except (OSError, ValueError):
            pass  # the process is gone; the answer reader reports how it ended

    def _read_answers(self) -> None:
        stdout: IO[bytes] | None = self.process.stdout
        assert stdout is not None
        for line in stdout:
            try:
                answer = decode(line)
            except ValueError:
                log.debug("engine %s wrote a line that is not JSON: %r", self.pid, line[:200])
                continue
            self._dispatch(answer)
        self._ended()

    def _dispatch(self, answer: dict[str, Any]) -> None:
        event = answer.get("ev")
        if "id" not in answer:
            if event == "loaded":
                self._control.put(EngineInfo.from_dict(answer["info"]))
            elif event == "error":
                # A failed load ends the engine: that exit is expected, not a crash.
                with self._state:
                    self._closing = True
                self._control.put(error_from_dict(answer.get("error") or {}))
            return
        with self._state:
            current = self._current
            if current is None or current[0] != answer["id"]:
                return
            if event in ("done", "error"):
                self._current = None
                self._phase = "while it was idle"
                if event == "done":
                    self.generations += 1
        put = current[1]
        if event == "text":
            put("text", answer["text"])
        elif event == "notice":
            put("notice", answer["text"])
        elif event == "tool_calls":
            put("tool_calls", answer["deltas"])
        elif event == "done":
            put("done", (int(answer["prompt"]), int(answer["completion"])))
        elif event == "error":
            put("error", error_from_dict(answer.get("error") or {}))
        if event in ("done", "error"):
            self.busy.release()

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        for raw in stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                log.debug("engine %s: %s", self.pid, line)

    def _ended(self) -> None:
        returncode = self.process.wait()
        self._stderr_reader.join(timeout=1)  # its last lines may name the cause
        with self._state:
            closing = self._closing
            current, self._current = self._current, None
            error: LLMError
            if closing:
                error = ModelNotReadyError(reason="The model was unloaded before the reply.")
            else:
                self.crash = self._crash_error(returncode)
                error = self.crash
        if not closing:
            log.info("%s %s", error.description, error.reason)
        self._control.put(error)
        if current is not None:
            current[1]("error", error)
            self.busy.release()

    def _crash_error(self, returncode: int) -> EngineCrashedError:
        how, signal_name = describe_exit(returncode)
        reason = f"llama.cpp's process for {self.name} (pid {self.pid}) {how} {self._phase}."
        if signal_name == "SIGKILL":
            reason += (
                " SIGKILL comes from another program or from the kernel's out-of-memory "
                "killer, which ends the largest process when memory runs out."
            )
        elif returncode < 0 and -returncode in _CRASH_SIGNALS:
            reason += " That is a crash inside llama.cpp."
        found = self._last_native_error()
        if found:
            reason += f" It last said: {found}"
        return EngineCrashedError(reason=reason)

    def _last_native_error(self) -> str:
        for line in reversed(self._stderr):
            if "Fatal Python error" in line:
                continue  # faulthandler's own report: the signal is named already
            if any(marker in line for marker in _MARKERS):
                return line.strip()[:300]
        return ""


__all__ = ["Engine", "EngineInfo", "child_environment", "describe_exit", "engine_command"]
