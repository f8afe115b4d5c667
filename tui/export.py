"""Export a stored conversation as Markdown (to read) or JSON (lossless, to process).

Markdown is read with ``cat`` or a pager, so its untrusted text (replies, tool results,
titles, model ids) has control characters neutralised (:mod:`backends.untrusted`): an
``ESC ] 52`` in a reply must not write the reader's clipboard. The JSON document keeps
the exact text (JSON escapes control characters anyway).

The JSON document holds the conversation's metadata and its entries exactly as
:meth:`backends.context.Context.to_list` writes them, so
``Context.from_list(document["entries"])`` rebuilds the context entry for entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from backends.context import Context, ContextEntry, Role
from backends.secrets import write_private_file
from backends.untrusted import one_line, printable

if TYPE_CHECKING:
    from tui.store import Conversation, Store

ExportFormat = Literal["md", "json"]
FORMATS: tuple[ExportFormat, ...] = ("md", "json")
JSON_FORMAT_NAME = "spezichat-conversation"
JSON_FORMAT_VERSION = 1

_HEADINGS = {
    Role.SYSTEM: "System",
    Role.USER: "User",
    Role.ASSISTANT: "Assistant",
    Role.TOOL: "Tool result",
}


def _local(moment: Any) -> str:
    return str(moment.astimezone().strftime("%Y-%m-%d %H:%M"))


def _fence(text: str, info: str = "") -> str:
    """``text`` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def _pretty_arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^( {0,3})(#{1,6})(?=[ \t]|$)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^(?: {4}|\t| {0,3}(?:>|[-+*][ \t]|\d{1,9}[.)][ \t]|<))")
"""Lines that start no paragraph: indented code, a quote, a list item, HTML."""
MESSAGE_LEVEL = 2
"""Each message is a ``##`` section; headings in its text go below that."""


def _demote_headings(text: str) -> str:
    """Headings in a message's text, moved below the message's own ``##`` heading.

    ``# Plan`` becomes ``### Plan`` (at most ``######``); a Setext heading (a paragraph
    underlined with ``===`` or ``---``) becomes such a heading too. Lines in fenced code
    blocks stay as they are: there ``# comment`` is code. A code block left open (a
    reply stopped mid-way) is closed, or it would swallow the sections after it.
    """
    out: list[str] = []
    fence = ""  # the opening fence while inside a fenced code block
    paragraph: int | None = None  # where the paragraph being read starts in ``out``
    in_block = False  # in a list item or quote: its lines are no paragraph of ours
    for line in text.replace("\r\n", "\n").split("\n"):
        opening = _FENCE.match(line)
        if fence:
            if opening and _closes(fence, opening.group(1), line):
                fence = ""
            out.append(line)
            continue
        if not line.strip():
            paragraph, in_block = None, False
        elif opening and not (opening.group(1)[0] == "`" and "`" in line[opening.end() :]):
            fence, paragraph = opening.group(1), None
        elif atx := _ATX.match(line):
            level = min(len(atx.group(2)) + MESSAGE_LEVEL, 6)
            line = f"{atx.group(1)}{'#' * level}{line[atx.end() :]}"
            paragraph = None
        elif (setext := _SETEXT.match(line)) and paragraph is not None:
            level = (1 if setext.group(1)[0] == "=" else 2) + MESSAGE_LEVEL
            title = " ".join(part.strip() for part in out[paragraph:])
            del out[paragraph:]
            line, paragraph = f"{'#' * level} {title}", None
        elif _BREAK.match(line):
            paragraph = None
        elif _NOT_PARAGRAPH.match(line):
            paragraph, in_block = None, True
        elif paragraph is None and not in_block:
            paragraph = len(out)
        out.append(line)
    if fence:  # a reply stopped inside a code block: the rest of the file is no code
        out.append(fence)
    return "\n".join(out)


def _closes(fence: str, run: str, line: str) -> bool:
    """Whether ``line`` (starting with the fence characters ``run``) closes ``fence``."""
    return run[0] == fence[0] and len(run) >= len(fence) and not line.strip().strip(run[0])


def _entry_markdown(entry: ContextEntry) -> str:
    heading = _HEADINGS[entry.role]
    if entry.role is Role.TOOL and entry.name:
        heading = f"Tool result: {one_line(entry.name)}"
    parts = [f"## {heading}", f"*{_local(entry.created)}*"]
    if entry.role is Role.TOOL:
        parts.append(_fence(entry.content))
    elif entry.content:
        parts.append(_demote_headings(entry.content))
    for call in entry.tool_calls:
        arguments = _fence(_pretty_arguments(call.arguments), "json")
        parts.append(f"**Tool call:** `{one_line(call.name)}`\n\n{arguments}")
    if entry.role is Role.ASSISTANT and not entry.complete:
        why = {"stopped": "stopped by the user", "error": "ended by an error"}.get(
            entry.finish_reason or "", "incomplete"
        )
        parts.append(f"*(reply {why})*")
    return "\n\n".join(parts)


def export_markdown(conversation: Conversation, context: Context) -> str:
    """The conversation as a Markdown document: a header, then one section per entry.

    Control characters are neutralised (ESC shows as ``␛``); see the module docstring.
    """
    header = [
        f"# {one_line(conversation.title)}",
        "",
        f"- Backend: {one_line(conversation.backend) or 'unknown'}",
        f"- Model: {one_line(conversation.model) or 'unknown'}",
        f"- Started: {_local(conversation.created)}",
        f"- Last message: {_local(conversation.updated)}",
        f"- Conversation id: `{conversation.id}`",
    ]
    sections = ["\n".join(header), *(_entry_markdown(entry) for entry in context)]
    return printable("\n\n".join(sections) + "\n")


def export_json(conversation: Conversation, context: Context) -> str:
    """The conversation as JSON: metadata plus the lossless ``Context.to_list()`` entries."""
    document = {
        "format": JSON_FORMAT_NAME,
        "version": JSON_FORMAT_VERSION,
        "conversation": conversation.to_dict(),
        "entries": context.to_list(),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def export_filename(conversation: Conversation, fmt: ExportFormat) -> str:
    """``<date>-<title slug>-<short id>.<fmt>``: readable, stable for one conversation."""
    slug = re.sub(r"[^\w]+", "-", conversation.title.lower(), flags=re.UNICODE).strip("-_")
    slug = slug[:48].rstrip("-_") or "conversation"
    date = conversation.created.astimezone().strftime("%Y-%m-%d")
    return f"{date}-{slug}-{conversation.id[:8]}.{fmt}"


def export_to_file(store: Store, conversation_id: str, directory: Path, fmt: ExportFormat) -> Path:
    """Write the conversation to ``directory`` (created if needed); returns the file's path.

    Exporting the same conversation again replaces its earlier export. Raises
    :class:`tui.store.StoreError` when the conversation is missing or the file cannot
    be written.
    """
    from tui.store import ConversationNotFoundError, StoreError

    if fmt not in FORMATS:
        raise StoreError(
            f"Unknown export format '{fmt}'.",
            reason="Conversations can be exported as Markdown (md) or JSON (json).",
            suggestion="Choose md or json.",
        )
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFoundError()
    context = store.load_context(conversation_id)
    text = (
        export_markdown(conversation, context)
        if fmt == "md"
        else export_json(conversation, context)
    )
    directory = Path(directory).expanduser()
    path = directory / export_filename(conversation, fmt)
    try:
        # Conversations are private: the file is 0600 (and a new folder 0700) from the
        # start, written atomically.
        write_private_file(path, text)
    except OSError as exc:
        raise StoreError(
            "The conversation could not be exported.",
            reason=f"{exc.filename or directory}: {exc.strerror or exc}",
            suggestion="Choose a folder you can write to (for example your home folder).",
        ) from exc
    return path
