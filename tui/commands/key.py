"""``spezichat key``: store, show (masked) or delete the OpenAI API key."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.secrets import Secret


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "key",
        help="manage the stored OpenAI API key",
        description=(
            "Manage the OpenAI API key spezichat stores: in the system keyring when one is "
            "available, else in a file only you can read. OPENAI_API_KEY, when set, takes "
            "precedence over the stored key."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser(
        "set",
        help="store a key (asked for without echo, or read from standard input)",
        description="Store the OpenAI API key. On a terminal it is asked for without "
        "echo; otherwise the first line of standard input is the key. It is never taken "
        "from the command line, where other users and the shell history could see it.",
    )
    actions.add_parser("show", help="show the key in use, masked, and where it comes from")
    actions.add_parser("delete", help="remove the stored key")


def _read_key() -> tuple[Secret, str]:
    """The key the user gives, and where it came from (for errors: never the key)."""
    from backends.secrets import Secret

    if sys.stdin.isatty():
        import getpass

        return Secret(getpass.getpass("OpenAI API key: ")), "the key typed at the prompt"
    raw = getattr(sys.stdin, "buffer", None)
    if raw is not None:  # bytes that are not UTF-8 become U+FFFD, which the check names
        return Secret(raw.readline().decode("utf-8", "replace")), "standard input"
    return Secret(sys.stdin.readline()), "standard input"


def run(args: argparse.Namespace) -> int:
    import os

    from backends.errors import LLMError
    from backends.openai.keys import ENV_VAR, KeyStore, mask_key, resolve_api_key
    from tui.commands.common import fail

    store = KeyStore()
    try:
        if args.action == "set":
            key, source = _read_key()
            where = store.set(key, source=source)  # checked there: no key with '…' or a tab
            print(f"Stored the OpenAI API key {mask_key(key.reveal().strip())} in {where}.")
            if os.environ.get(ENV_VAR):
                print(f"Note: {ENV_VAR} is set and takes precedence over the stored key.")
            return 0
        if args.action == "show":
            resolved = resolve_api_key()
            if resolved is None:
                print(
                    "No OpenAI API key is set: store one with `spezichat key set` "
                    f"or set {ENV_VAR}.",
                    file=sys.stderr,
                )
                return 1
            source = str(store.path) if resolved.source == "file" else resolved.source
            print(f"{mask_key(resolved.value)} (from {source})")
            return 0
        removed = store.delete()
        if removed:
            print(f"Deleted the stored OpenAI API key from {', '.join(removed)}.")
        else:
            print("No OpenAI API key was stored.")
        if os.environ.get(ENV_VAR):
            print(f"Note: {ENV_VAR} is still set in the environment.")
        return 0
    except LLMError as error:
        return fail(error)
