"""Helpers shared by the subcommands: error output, untrusted text, settings loading.

Text that came from outside (replies, tool results, server errors, model ids, mDNS
names, titles) reaches a terminal only through :mod:`backends.untrusted`. The rule:

- stderr carries human text only (errors, notes, tool calls, prompts): always neutralised;
- stdout that *is* the data (``ask``'s reply, ``models``' ids) keeps the exact bytes for a
  pipe or file and is neutralised on a terminal (``ask`` per piece, :func:`line_for_stdout`);
- forms made for reading (tables, search hits, Markdown) are always neutralised; their
  lossless twin is the JSON form (``--json``, ``--format json``), which keeps the exact text.
"""

from __future__ import annotations

import sys

from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui.advice import cli_advice
from tui.settings import Settings


def fail(error: LLMError) -> int:
    """Print an error's description, reason and advice to stderr; return exit code 1.

    The advice is the command line's (:func:`tui.advice.cli_advice`): a flag, a command
    or a config key where the library's suggestion names its own setting.

    Servers' words reach these fields, so control characters are neutralised always:
    errors are text for people, whether stderr is a terminal or a log file. With stderr
    closed (``2>&-``) or unwritable only the exit code tells; the error never goes to
    stdout, which may be the data (``print(file=None)`` would write there).
    """
    if sys.stderr is None:
        return 1
    try:
        print(f"error: {printable(error.description)}", file=sys.stderr)
        print(f"  why: {printable(error.reason)}", file=sys.stderr)
        print(f"  fix: {printable(cli_advice(error))}", file=sys.stderr, flush=True)
    except OSError:
        pass
    return 1


def line_for_stdout(text: str) -> str:
    """One line for stdout (an id, a row): exact into a pipe, one neutralised line on a terminal."""
    return one_line(text) if sys.stdout.isatty() else text


def usage_error(command: str, message: str) -> int:
    print(f"usage: spezichat {command} ...", file=sys.stderr)
    print(f"spezichat {command}: error: {message}", file=sys.stderr)
    return 2


def warn(problem: LLMError) -> None:
    """Print a warning to stderr: its description, each line of its reason, its advice."""
    if sys.stderr is None:
        return
    try:
        print(f"warning: {printable(problem.description)}", file=sys.stderr)
        for line in problem.reason.splitlines():
            print(f"  {one_line(line)}", file=sys.stderr)
        print(f"  fix: {printable(cli_advice(problem))}", file=sys.stderr, flush=True)
    except OSError:
        pass


def load_settings(*, warn_on_stderr: bool = True) -> Settings | None:
    """Load settings, printing the error and returning ``None`` when the file is broken.

    Values of the wrong type and unknown keys are warned about on stderr (unless the
    caller shows ``settings.notice`` itself, as the app does); their defaults apply and
    the command goes on.
    """
    try:
        settings = Settings.load()
    except LLMError as error:
        fail(error)
        return None
    if settings.notice is not None and warn_on_stderr:
        warn(settings.notice)
    return settings
