"""``spezichat ask``: one prompt, one streamed reply, for scripts and pipes."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from backends.errors import LLMError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="send one prompt and stream the reply to stdout",
        description=(
            "Send one prompt and write the reply to stdout as it arrives. The prompt is "
            "the arguments, or standard input when it is '-' or absent and stdin is not "
            "a terminal; text piped in next to a prompt argument follows it after a blank "
            "line. Input must be UTF-8. Errors go to stderr; exit codes: 0 ok (also when "
            "the reader of stdout stops early, as `| head` does), 1 failure, 2 usage, "
            "130 interrupted."
        ),
    )
    parser.add_argument("prompt", nargs="*", help="the prompt ('-' reads standard input)")
    parser.add_argument(
        "-b",
        "--backend",
        help="backend to use (default: the configured one, else the offline starter)",
    )
    parser.add_argument("-m", "--model", help="model to use (default: the configured one)")
    parser.add_argument(
        "-s",
        "--system",
        action="append",
        metavar="PROMPT",
        help="system prompt (repeatable; default: the configured one)",
    )
    parser.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the configured one)"
    )
    parser.add_argument(
        "--top-p", type=float, help="nucleus sampling mass, 0 to 1 (default: the configured one)"
    )
    parser.add_argument(
        "--max-tokens", type=int, help="longest reply in tokens (default: the configured one)"
    )
    parser.add_argument(
        "--max-time",
        type=_seconds,
        metavar="SECONDS",
        help="give up when the whole reply (tool calls included) takes longer; what "
        "arrived stays written, and ask exits 1",
    )
    parser.add_argument(
        "--tools",
        metavar="FILE.py",
        help="offer the @llm_function tools of a Python file to the model; each call is "
        "shown on stderr and runs only after you answer y on the terminal",
    )
    parser.add_argument(
        "--approve-tools",
        action="store_true",
        help="run tool calls without asking (without a terminal and without this flag, "
        "tool calls are refused and the model is told so)",
    )
    parser.add_argument(
        "--mcp",
        action="append",
        metavar="NAME",
        help="use this MCP server of [mcp.servers] (repeatable; default: every enabled one)",
    )
    parser.add_argument("--no-mcp", action="store_true", help="use no MCP server for this prompt")
    from tui.backends import REGISTRY

    REGISTRY.add_ask_options(parser)  # each backend's own options (--chat-format, --ca-cert)


T = TypeVar("T")


def _given(flag: T | None, configured: T | None) -> T | None:
    """The command-line value when given, else the configured one."""
    return flag if flag is not None else configured


def _seconds(text: str) -> float:
    """``--max-time``'s value: a positive, finite number of seconds."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds, like 30 or 2.5") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds above 0")
    return value


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt from the arguments and stdin; ``None`` when there is none to read.

    ``-`` reads the prompt from stdin. Words are the prompt, and text piped in beside them
    (stdin not a terminal, not empty) follows after a blank line, as in
    ``git diff | spezichat ask "Review this:"``. Raises :class:`LLMError` for input that
    is not UTF-8 (refused, not repaired: a prompt must not change behind the user's back).
    """
    words: list[str] = args.prompt
    if words == ["-"]:
        return _read_stdin() if sys.stdin is not None else ""
    if words:
        prompt = " ".join(words)
        _check_argument(prompt)
        piped = _read_stdin() if _stdin_is_piped() else ""
        return f"{prompt}\n\n{piped}" if piped.strip() else prompt
    return _read_stdin() if _stdin_is_piped() else None


def _stdin_is_piped() -> bool:
    return sys.stdin is not None and not sys.stdin.isatty()


def _read_stdin() -> str:
    """All of stdin as UTF-8, whatever the locale says."""
    from backends.errors import LLMError

    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LLMError(
            "The text on standard input is not UTF-8.",
            reason=f"At byte {error.start} (0x{data[error.start]:02X}; counting from 0, on "
            f"line {line}) the input stops being valid UTF-8; it is probably in another "
            "encoding, such as Latin-1 or Windows-1252.",
            suggestion="Convert the text to UTF-8 first, for example "
            "`iconv -f latin1 -t utf-8 FILE | spezichat ask ...`.",
        ) from None


def _check_argument(prompt: str) -> None:
    """Refuse argument bytes that are not text in the locale's encoding (UTF-8 nearly always).

    Python hands such bytes over as lone surrogates, which no server could be sent.
    """
    from backends.errors import LLMError

    for char in prompt:
        if "\udc80" <= char <= "\udcff":
            raise LLMError(
                "The prompt argument is not UTF-8 text.",
                reason=f"It holds the byte 0x{ord(char) - 0xDC00:02X}, which is not part of a "
                f"valid character in the locale's encoding ({sys.getfilesystemencoding()}); "
                "the text was probably written in another encoding.",
                suggestion="Retype the prompt in a UTF-8 terminal, or convert it first, for "
                "example with `iconv -f latin1 -t utf-8`.",
            )


def run(args: argparse.Namespace) -> int:
    from backends.errors import LLMError
    from tui.commands.common import fail, load_settings, usage_error

    if sys.stdout is None:
        return fail(_stdout_closed())  # before the prompt is read or a reply paid for
    try:
        prompt = read_prompt(args)
    except LLMError as error:
        return fail(error)
    if prompt is None or not prompt.strip():
        return usage_error("ask", "no prompt given: pass it as an argument or pipe it on stdin")
    settings = load_settings()
    if settings is None:
        return 1

    import asyncio

    from backends.untrusted import one_line
    from tui.backends import REGISTRY
    from tui.wiring import ChatOptions

    if args.backend is not None and args.backend not in REGISTRY:
        return usage_error(
            "ask",
            f"argument -b/--backend: unknown backend '{one_line(args.backend)[:80]}' "
            f"(choose from {', '.join(REGISTRY)})",
        )

    tools: tuple[Any, ...] = ()
    if args.tools:
        from backends.functions import load_tools

        try:
            tools = tuple(load_tools(args.tools))
        except LLMError as error:
            return fail(error)

    from tui.wiring import mcp_manager

    mcp = None if args.no_mcp else mcp_manager(settings)
    if args.mcp:
        if args.no_mcp:
            return usage_error("ask", "--mcp and --no-mcp exclude each other")
        known = mcp.names() if mcp is not None else []
        unknown = [name for name in args.mcp if name not in known]
        if unknown:
            listed = ", ".join(known) or "none"
            return usage_error(
                "ask", f"no MCP server named {', '.join(unknown)} (configured: {listed})"
            )

    # Before onboarding, the offline starter model answers: real, with no account and no
    # network (the mock model would only pretend).
    backend = args.backend or settings.general.backend or REGISTRY.default
    try:
        overrides = REGISTRY.ask_overrides(backend, args)
    except ValueError as error:  # an option of another backend
        return usage_error("ask", str(error))
    system = tuple(args.system) if args.system else (settings.general.system_prompt,)
    general = settings.general
    # Sampling as the app sends it: the configured values, each overridden by its flag.
    options = ChatOptions(
        backend=backend,
        model=args.model or (general.model if backend == general.backend else ""),
        system_prompts=tuple(s for s in system if s),
        temperature=_given(args.temperature, general.temperature),
        top_p=_given(args.top_p, general.top_p),
        max_tokens=_given(args.max_tokens, general.max_tokens),
        tools=tools,
        overrides=overrides,
    )
    try:
        return asyncio.run(
            _ask(
                prompt,
                options,
                settings,
                approve_tools=args.approve_tools,
                overrides=overrides,
                max_time=args.max_time,
                mcp=mcp,
                mcp_names=args.mcp,
            )
        )
    except LLMError as error:
        return fail(error)


async def _ask(
    prompt: str,
    options: Any,
    settings: Any,
    *,
    approve_tools: bool = False,
    overrides: dict[str, Any] | None = None,
    max_time: float | None = None,
    mcp: Any = None,
    mcp_names: list[str] | None = None,
) -> int:
    import asyncio
    from contextlib import aclosing

    from backends.errors import LLMError
    from backends.events import Notice, TextDelta, ToolCallResult
    from backends.runner import Runner
    from backends.untrusted import printable
    from tui.wiring import make_platform, make_schema

    out = sys.stdout
    # The reply keeps its exact bytes for a pipe or file (scripts rely on it); on a
    # terminal its control characters are neutralised (per character, so per piece).
    tty = out.isatty()
    last = ""
    arrived = 0
    # --max-time covers the whole reply, setup and tool calls included. (No
    # asyncio.timeout: Python 3.10 is supported.)
    task = asyncio.current_task()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if task is not None:
            task.cancel()

    timer = None if max_time is None else asyncio.get_running_loop().call_later(max_time, expire)
    try:
        if mcp is not None:
            options = await _with_mcp_tools(options, mcp, mcp_names)
        schema = make_schema(options, settings)
        platform = make_platform(options.backend, settings, overrides=overrides)
        async with Runner([platform]) as runner:
            session = runner.session(schema)
            session.approver = _mcp_policy(session, approve_tools)
            session.context.append_user(prompt)
            async with aclosing(session.stream()) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text = printable(event.text) if tty else event.text
                        _write(out, text, arrived)
                        arrived += len(event.text)
                        last = text or last
                    elif isinstance(event, ToolCallResult):
                        status = "error" if event.is_error else "result"
                        print(f"  {status}: {_clip(event.content)}", file=sys.stderr)
                    elif isinstance(event, Notice):
                        print(f"note: {printable(event.text)}", file=sys.stderr)
    except asyncio.CancelledError:
        if not expired:
            raise
        _end_line(out, tty, last)
        raise _too_slow(max_time or 0.0, arrived) from None
    except LLMError:
        _end_line(out, tty, last)  # after a failed write, stdout is /dev/null: harmless
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if mcp is not None:
            await mcp.aclose()  # ends every server this command started
    if tty and not last.endswith("\n"):
        _write(out, "\n", arrived)
    return 0


async def _with_mcp_tools(options: Any, mcp: Any, names: list[str] | None) -> Any:
    """Start the chosen MCP servers, wait for them, warn about those that failed (the
    reply goes on without them) and add their tools to ``options``."""
    import dataclasses

    from tui.commands.common import warn
    from tui.wiring import offer_tools

    mcp.start(names)
    await mcp.wait()
    chosen = set(names) if names else None
    for info in mcp.servers():
        if info.error is not None and (chosen is None or info.name in chosen):
            warn(info.error)
    return dataclasses.replace(options, tools=offer_tools(options.tools, mcp))


def _mcp_policy(session: Any, approve_tools: bool) -> Any:
    """The terminal approver; calls of ``approve = "always"`` MCP servers run unasked."""
    from backends.mcp.tools import approver_with_policy

    return approver_with_policy(
        lambda: session.schema.functions, _tool_approver(approve_tools), _tool_approver(True)
    )


def _stdout_closed() -> LLMError:
    from backends.errors import LLMError

    return LLMError(
        "Standard output is closed, so the reply would have nowhere to go.",
        reason="spezichat ask writes the reply to standard output, but it was closed when "
        "spezichat started (for example with `>&-`).",
        suggestion="Redirect the reply instead of closing it: to a file, or to /dev/null to "
        "discard it.",
    )


def _write(out: Any, text: str, arrived: int) -> None:
    """Write and flush a piece of the reply, turning a failed write into an error.

    A reader that went away (``| head``) lets :class:`BrokenPipeError` through, which the
    command line answers with a quiet exit 0 (as for every subcommand). Either way stdout
    then points at /dev/null, so the flush at exit cannot fail again and print a trace.
    """
    import errno

    from backends.errors import LLMError

    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        _discard_stdout()
        raise
    except OSError as error:
        _discard_stdout()
        code = errno.errorcode.get(error.errno or 0, "")
        why = f"Writing failed: {error.strerror or error}" + (f" ({code})." if code else ".")
        if arrived:
            why += f" The first {arrived} characters of the reply had been written."
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "Make free space on the disk that standard output goes to, or redirect the "
            fix += "reply to a file on another disk."
        else:
            fix = "Check where standard output goes (a file, pipe or device) and that it "
            fix += "can be written, or redirect the reply to a file."
        raise LLMError(
            "The reply could not be written to standard output.", reason=why, suggestion=fix
        ) from None


def _discard_stdout() -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _end_line(out: Any, tty: bool, last: str) -> None:
    """On a terminal, end a cut-off reply's line so that the error starts on its own."""
    import contextlib

    if tty and last and not last.endswith("\n"):
        with contextlib.suppress(OSError, ValueError):
            out.write("\n")
            out.flush()


def _too_slow(max_time: float, arrived: int) -> LLMError:
    from backends.errors import LLMError

    return LLMError(
        "The reply took longer than --max-time allows.",
        reason=f"--max-time gave the whole reply {max_time:g} seconds; "
        + (
            f"the {arrived} characters that had arrived by then were written, and the rest "
            "was not waited for."
            if arrived
            else "no text of it had arrived by then."
        ),
        suggestion="Allow more time with a larger --max-time, ask for a shorter reply "
        "(--max-tokens), or use a faster model or backend.",
    )


def _clip(text: str, limit: int = 300) -> str:
    """One neutralised line of untrusted text (tool arguments and results), shortened."""
    from backends.untrusted import one_line

    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tool_approver(approve_all: bool) -> Any:
    """Shows each tool call on stderr and asks for a yes on the terminal."""
    from backends.functions import in_daemon_thread

    async def approve(call: Any) -> bool:
        print(f"tool call: {_clip(call.name, 80)}({_clip(call.arguments)})", file=sys.stderr)
        if approve_all:
            return True
        # A daemon thread, not asyncio.to_thread: one Ctrl+C at the question must end
        # the process, and the default executor's threads are joined at exit.
        answer = await in_daemon_thread(
            _ask_terminal, {"question": "  run it? [y/N] "}, "spezichat-ask-terminal"
        )
        if answer is None:
            print(
                "  refused: there is no terminal to ask on; pass --approve-tools to run "
                "tool calls without asking",
                file=sys.stderr,
            )
            return False
        if answer.strip().lower() in ("y", "yes"):
            return True
        print("  refused", file=sys.stderr)
        return False

    return approve


def _ask_terminal(question: str) -> str | None:
    """Ask on the terminal (stdin when it is one, else /dev/tty); ``None`` without one."""
    if sys.stdin.isatty():
        sys.stderr.write(question)
        sys.stderr.flush()
        return sys.stdin.readline()
    try:
        with open("/dev/tty", "r+", encoding="utf-8") as tty:
            tty.write(question)
            tty.flush()
            return tty.readline()
    except OSError:
        return None
