"""The ``spezichat`` command.

``spezichat`` alone opens the terminal app; subcommands serve scripts and pipes. Each
subcommand lives in ``tui/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; those modules import only ``argparse`` at module level so that
``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from backends import __version__

# Subcommand name -> module under tui.commands (in the order --help lists them).
COMMANDS: dict[str, str] = {
    "ask": "ask",
    "history": "history",
    "models": "models",
    "download": "download",
    "key": "key",
    "discover": "discover",
    "fog": "fog",
    "web": "web",
    "mcp": "mcp",
}

EXIT_OK = 0
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spezichat",
        description=(
            "A keyboard-driven terminal chat for OpenAI, fog nodes on your network and "
            "on-device GGUF models. Run without a command to open the app."
        ),
    )
    parser.add_argument("--version", action="version", version=f"spezichat {__version__}")
    parser.add_argument("--onboarding", action="store_true", help="run the first-start setup again")
    parser.add_argument(
        "--tools",
        metavar="FILE.py",
        help="offer the @llm_function tools of a Python file to the model (the app asks "
        "before each call)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"tui.commands.{module}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:
        # The common case needs no parser (which imports every subcommand module).
        print(f"spezichat {__version__}")
        return EXIT_OK
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.command is None:
            from tui.commands.app import run_app

            return run_app(args)
        module = importlib.import_module(f"tui.commands.{COMMANDS[args.command]}")
        result: int = module.run(args)
        return result
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (for example `| head`): not an error.
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
