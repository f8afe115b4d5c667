"""``spezichat ask``: one prompt, one streamed reply, for scripts and pipes."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="send one prompt and stream the reply to stdout",
        description=(
            "Send one prompt and write the reply to stdout as it arrives. The prompt is "
            "the arguments, or standard input when it is '-' or absent and stdin is not "
            "a terminal. Errors go to stderr; exit codes: 0 ok, 1 failure, 2 usage, "
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
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    parser.add_argument("--max-tokens", type=int, help="longest reply in tokens")
    parser.add_argument(
        "--chat-format",
        metavar="NAME",
        help="on-device chat format for a model without a chat template (for example "
        "chatml, gemma, transcript); default: [local] chat_format",
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
    from tui.commands.discover import add_client_options

    add_client_options(parser)


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt from the arguments or stdin; ``None`` when there is none to read."""
    words: list[str] = args.prompt
    if words and words != ["-"]:
        return " ".join(words)
    if words == ["-"] or not sys.stdin.isatty():
        return sys.stdin.read()
    return None


def run(args: argparse.Namespace) -> int:
    from tui.commands.common import fail, load_settings, usage_error

    prompt = read_prompt(args)
    if prompt is None or not prompt.strip():
        return usage_error("ask", "no prompt given: pass it as an argument or pipe it on stdin")
    settings = load_settings()
    if settings is None:
        return 1

    import asyncio

    from backends.errors import LLMError
    from tui.wiring import ChatOptions

    tools: tuple[Any, ...] = ()
    if args.tools:
        from backends.functions import load_tools

        try:
            tools = tuple(load_tools(args.tools))
        except LLMError as error:
            return fail(error)

    # Before onboarding, the offline starter model answers: real, with no account and no
    # network (the mock model would only pretend).
    backend = args.backend or settings.general.backend or "local"
    if args.chat_format and backend != "local":
        return usage_error("ask", "--chat-format applies to the local backend only")
    system = tuple(args.system) if args.system else (settings.general.system_prompt,)
    options = ChatOptions(
        backend=backend,
        model=args.model or (settings.general.model if backend == settings.general.backend else ""),
        system_prompts=tuple(s for s in system if s),
        temperature=args.temperature if args.temperature is not None else None,
        max_tokens=args.max_tokens,
        tools=tools,
        chat_format=args.chat_format or "",
    )
    try:
        from tui.commands.discover import client_overrides

        return asyncio.run(
            _ask(
                prompt,
                options,
                settings,
                approve_tools=args.approve_tools,
                overrides=client_overrides(args),
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
) -> int:
    from backends.events import Notice, TextDelta, ToolCallResult
    from backends.runner import Runner
    from tui.wiring import make_platform, make_schema

    schema = make_schema(options, settings)
    platform = make_platform(options.backend, settings, overrides=overrides)
    async with Runner([platform]) as runner:
        session = runner.session(schema)
        session.approver = _tool_approver(approve_tools)
        session.context.append_user(prompt)
        out = sys.stdout
        last = ""
        async for event in session.stream():
            if isinstance(event, TextDelta):
                out.write(event.text)
                out.flush()
                last = event.text
            elif isinstance(event, ToolCallResult):
                status = "error" if event.is_error else "result"
                print(f"  {status}: {_clip(event.content)}", file=sys.stderr)
            elif isinstance(event, Notice):
                print(f"note: {event.text}", file=sys.stderr)
        if out.isatty() and not last.endswith("\n"):
            out.write("\n")
            out.flush()
    return 0


def _clip(text: str, limit: int = 300) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tool_approver(approve_all: bool) -> Any:
    """Shows each tool call on stderr and asks for a yes on the terminal."""
    import asyncio

    async def approve(call: Any) -> bool:
        print(f"tool call: {call.name}({_clip(call.arguments)})", file=sys.stderr)
        if approve_all:
            return True
        answer = await asyncio.to_thread(_ask_terminal, "  run it? [y/N] ")
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
