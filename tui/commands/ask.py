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
        "-b", "--backend", help="backend to use (default: the configured one, else mock)"
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

    backend = args.backend or settings.general.backend or "mock"
    system = tuple(args.system) if args.system else (settings.general.system_prompt,)
    options = ChatOptions(
        backend=backend,
        model=args.model or (settings.general.model if backend == settings.general.backend else ""),
        system_prompts=tuple(s for s in system if s),
        temperature=args.temperature if args.temperature is not None else None,
        max_tokens=args.max_tokens,
    )
    try:
        return asyncio.run(_ask(prompt, options, settings))
    except LLMError as error:
        return fail(error)


async def _ask(prompt: str, options: Any, settings: Any) -> int:
    from backends.runner import Runner
    from tui.wiring import make_platform, make_schema

    schema = make_schema(options, settings)
    async with Runner([make_platform(options.backend, settings)]) as runner:
        session = runner.session(schema)
        session.context.append_user(prompt)
        out = sys.stdout
        last = ""
        async for piece in session.generate():
            out.write(piece)
            out.flush()
            last = piece
        if out.isatty() and not last.endswith("\n"):
            out.write("\n")
            out.flush()
    return 0
