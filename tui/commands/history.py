"""``spezichat history``: list, show, search and export stored conversations."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _store_path() -> str:
    # Same as tui.store.default_path(), without importing the settings module: --help
    # must stay fast (a test checks that both agree).
    from platformdirs import user_data_dir

    return f"{user_data_dir('spezichat', appauthor=False)}/history.db"


def add_parser(subparsers: Any) -> None:
    path = _store_path()
    parser = subparsers.add_parser(
        "history",
        help="list, show, search and export stored conversations",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Read the conversations the app stored. Conversation ids may be shortened\n"
            "to any unique prefix (as `list` prints them).\n\n"
            f"History database:\n  {path}"
        ),
    )
    commands = parser.add_subparsers(dest="history_command", metavar="ACTION")
    commands.required = True

    listing = commands.add_parser(
        "list",
        help="list conversations, most recent first",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"List stored conversations, most recent first, from\n  {path}",
    )
    listing.add_argument("-n", "--limit", type=_limit, help="show at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = commands.add_parser(
        "show",
        help="print one conversation",
        description="Print one conversation to stdout, as Markdown or lossless JSON.",
    )
    show.add_argument("id", help="conversation id or unique prefix")
    show.add_argument("-f", "--format", choices=("md", "json"), default="md")

    search = commands.add_parser(
        "search",
        help="full-text search across all conversations",
        description=(
            "Search every stored message. Words must all appear (any order); use "
            '"quotes" for a phrase, word* for a prefix, OR and NOT to combine. Text that '
            "is not a valid query is searched literally."
        ),
    )
    search.add_argument("query", nargs="+", help="what to look for")
    search.add_argument(
        "-n", "--limit", type=_limit, default=50, help="at most this many hits (default: 50)"
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of text")

    export = commands.add_parser(
        "export",
        help="write a conversation to a Markdown or JSON file",
        description=(
            "Write one conversation to a file and print the file's path. --output names "
            "the file (chat.md, notes/chat.json) or a folder (an existing one, or a name "
            "ending in /) to write <date>-<title>-<id>.<format> into."
        ),
    )
    export.add_argument("id", help="conversation id or unique prefix")
    export.add_argument(
        "-f",
        "--format",
        choices=("md", "json"),
        help="md or json (default: from the file name's extension, else md)",
    )
    export.add_argument(
        "-o",
        "--output",
        default=".",
        help="file to write, or folder to write into (default: the current folder)",
    )


def _limit(text: str) -> int:
    """A ``--limit``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number of at least 1, not {value} (leave -n out to show all)"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from tui.commands.common import fail
    from tui.store import Store, StoreError

    try:
        store = Store.open_default()
    except StoreError as error:
        return fail(error)
    try:
        notice = store.recovery_notice
        if notice is not None:
            fail(notice)
        action = {
            "list": _list,
            "show": _show,
            "search": _search,
            "export": _export,
        }[args.history_command]
        return action(store, args)
    except StoreError as error:
        return fail(error)
    finally:
        store.close()


def _warn(error: Any) -> None:
    """A damaged conversation, on stderr: stdout keeps the data (a table, JSON, Markdown)."""
    from backends.untrusted import printable

    print(f"warning: {printable(error.description)}", file=sys.stderr)
    print(f"  why: {printable(error.reason)}", file=sys.stderr)
    print(f"  note: {printable(error.suggestion)}", file=sys.stderr, flush=True)


def _warn_damaged(store: Any, damaged: dict[str, list[str]]) -> None:
    for conversation_id, problems in damaged.items():
        report = store.damage_report(conversation_id, problems)
        if report is not None:
            _warn(report)


def _local(moment: Any) -> str:
    return str(moment.astimezone().strftime("%Y-%m-%d %H:%M"))


def _list(store: Any, args: argparse.Namespace) -> int:
    import json

    from backends.untrusted import one_line

    conversations = store.list_conversations(limit=args.limit)
    # Rows that cannot be read as stored are repaired or skipped; each conversation
    # that has some is named on stderr, after the list.
    damaged = store.scan_damage()
    if args.json:
        print(json.dumps([c.to_dict() for c in conversations], indent=2))
        _warn_damaged(store, damaged)
        return 0
    if not conversations:
        print(f"No conversations yet (stored in {store.path}).", file=sys.stderr)
        _warn_damaged(store, damaged)
        return 0
    # A table is for reading (--json is the exact form): titles and model ids, which
    # came from servers and models, are neutralised to one line each.
    models = [one_line(f"{c.backend}/{c.model}") for c in conversations]
    model_width = min(30, max(len(model) for model in models))
    print(f"{'ID':<8}  {'UPDATED':<16}  {'MSGS':>4}  {'MODEL':<{model_width}}  TITLE")
    for c, model in zip(conversations, models, strict=True):
        if len(model) > model_width:
            model = model[: model_width - 1] + "…"
        print(
            f"{c.id[:8]}  {_local(c.updated)}  {c.message_count:>4}  "
            f"{model:<{model_width}}  {one_line(c.title)}"
        )
    _warn_damaged(store, damaged)
    return 0


def _show(store: Any, args: argparse.Namespace) -> int:
    from tui.export import export_json, export_markdown

    conversation_id = store.resolve_id(args.id)
    conversation = store.get_conversation(conversation_id)
    context = store.load_context(conversation_id)
    # Markdown is for reading, neutralised like a Markdown export; JSON keeps the exact text.
    render = export_json if args.format == "json" else export_markdown
    sys.stdout.write(render(conversation, context))
    report = store.damage_report(conversation_id)
    if report is not None:
        _warn(report)
    return 0


def _search(store: Any, args: argparse.Namespace) -> int:
    import json
    import secrets

    from backends.untrusted import one_line

    query = " ".join(args.query)
    tty = sys.stdout.isatty()
    # On a terminal the matches are shown bold. The store marks them with tokens no
    # stored text contains; they become escape sequences only after the snippet has been
    # neutralised, so the only escapes printed are our own.
    token = secrets.token_hex(8)
    mark = (f"<{token}>", f"</{token}>") if tty and not args.json else ("", "")
    hits = store.search(query, limit=args.limit, mark=mark)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "conversation_id": hit.conversation_id,
                        "conversation_title": hit.conversation_title,
                        "entry_id": hit.entry_id,
                        "role": hit.role.value,
                        "snippet": hit.snippet,
                        "created": hit.created.isoformat(),
                    }
                    for hit in hits
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    if not hits:
        print(f"No message matches {query!r}.", file=sys.stderr)
        return 1
    for hit in hits:
        print(
            f"{hit.conversation_id[:8]}  {_local(hit.created)}  {hit.role.value:<9}  "
            f"{one_line(hit.conversation_title)}"
        )
        snippet = one_line(hit.snippet)
        if mark[0]:
            snippet = snippet.replace(mark[0], "\x1b[1m").replace(mark[1], "\x1b[0m")
        print(f"    {snippet}")
    return 0


def _export(store: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    from tui.export import export_to_file

    conversation_id = store.resolve_id(args.id)
    output = Path(args.output).expanduser()
    if _names_a_folder(args.output, output):
        path = export_to_file(store, conversation_id, output, args.format or "md")
    else:
        fmt = args.format or ("json" if output.suffix.lower() == ".json" else "md")
        path = _export_file(store, conversation_id, output, fmt)
    print(path)
    return 0


def _names_a_folder(text: str, output: Any) -> bool:
    """Whether ``--output`` is a folder: an existing one, one written with a trailing
    slash, or a name without an extension (``exports``); else it names the file."""
    import os

    if text.endswith((os.sep, "/")) or output.is_dir():
        return True
    return not output.suffix


def _export_file(store: Any, conversation_id: str, path: Any, fmt: str) -> Any:
    """Write the conversation to exactly ``path`` (0600, atomically); returns the path."""
    from backends.secrets import write_private_file
    from tui.export import export_json, export_markdown
    from tui.store import ConversationNotFoundError, StoreError

    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFoundError()
    context = store.load_context(conversation_id)
    render = export_json if fmt == "json" else export_markdown
    try:
        write_private_file(path, render(conversation, context))
    except OSError as exc:
        raise StoreError(
            "The conversation could not be exported.",
            reason=f"{exc.filename or path}: {exc.strerror or exc}",
            suggestion="Choose a file in a folder you can write to (for example your home folder).",
        ) from exc
    return path
