"""Search across every conversation (SQLite FTS5 through the store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from backends.errors import LLMError
from backends.untrusted import one_line, printable
from tui import keymap

if TYPE_CHECKING:
    from tui.store import SearchHit, Store

MARK = ("\ue000", "\ue001")
"""Markers around matched words in snippets; turned into highlighting."""


def snippet_content(snippet: str) -> Content:
    """A snippet (one line, plain text) with the store's match markers shown highlighted."""
    parts: list[str | tuple[str, str]] = []
    inside = False
    for piece in one_line(snippet).replace(MARK[1], MARK[0]).split(MARK[0]):
        parts.append((piece, "bold $accent") if inside else piece)
        inside = not inside
    return Content.assemble(*parts)


def match_offset(text: str, snippet: str) -> int | None:
    """Where in ``text`` the first match that ``snippet`` marks starts (``None``: unknown).

    The snippet is a piece of the text with the matches marked and "…" where it was
    cut; the piece is found in the text, else the first matched word (any case).
    """
    if MARK[0] not in snippet:
        return None
    plain = snippet.replace(MARK[0], "").replace(MARK[1], "")
    before = len(snippet.split(MARK[0], 1)[0].replace(MARK[1], ""))
    tries = [(plain, before)]
    if plain.startswith("…"):
        tries.insert(0, (plain[1:], before - 1))
    for piece, at in list(tries):
        if piece.endswith("…"):
            tries.insert(0, (piece[:-1], at))
    for piece, at in tries:
        position = text.find(piece) if piece else -1
        if position >= 0:
            return position + at
    word = snippet.split(MARK[0], 1)[1].split(MARK[1], 1)[0]
    position = text.lower().find(word.lower()) if word else -1
    return position if position >= 0 else None


def match_finder(snippet: str) -> Callable[[str], int | None]:
    """:func:`match_offset` for ``snippet`` in a text as drawn (control characters shown)."""
    shown = printable(snippet)
    return lambda text: match_offset(text, shown)


class SearchScreen(ModalScreen["SearchHit | None"]):
    """Type to search; Down moves to the results; Enter jumps to the message."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings("dialog.close")

    def __init__(self, store: Store) -> None:
        super().__init__(classes="dialog-screen")
        self.store = store
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="search"):
            yield Static("Search all conversations", classes="dialog-title")
            yield Input(placeholder='words, "a phrase", prefix*', id="query")
            yield OptionList(id="hits")
            yield Static(
                "Enter: search / open · ↓: results · Esc: close", classes="dialog-hint", id="info"
            )

    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    @on(Input.Submitted, "#query")
    def _submitted(self, event: Input.Submitted) -> None:
        hits = self.query_one("#hits", OptionList)
        if hits.option_count:
            hits.focus()
            hits.highlighted = 0

    @work(exclusive=True, group="search")
    async def run_search(self, query: str) -> None:
        info = self.query_one("#info", Static)
        hits_view = self.query_one("#hits", OptionList)
        try:
            hits = self.store.search(query, limit=50, mark=MARK)
        except LLMError as error:
            info.update(Content(printable(f"⚠ {error.description} {error.suggestion}")))
            return
        self.hits = hits
        hits_view.clear_options()
        hits_view.add_options(
            Option(
                Content.assemble(
                    (one_line(hit.conversation_title), "bold"),
                    f"  {hit.role.value} · {hit.created.astimezone():%d %b %H:%M}\n",
                    snippet_content(hit.snippet),
                ),
                id=str(index),
            )
            for index, hit in enumerate(hits)
        )
        if query.strip():
            count = f"{len(hits)} match" + ("" if len(hits) == 1 else "es")
            info.update(Content(f"{count} · Enter on a result opens it · Esc closes"))

    def key_down(self) -> None:
        query = self.query_one("#query", Input)
        hits = self.query_one("#hits", OptionList)
        if query.has_focus and hits.option_count:
            hits.focus()

    @on(OptionList.OptionSelected, "#hits")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.hits[event.option_index])

    def action_close(self) -> None:
        self.dismiss(None)
