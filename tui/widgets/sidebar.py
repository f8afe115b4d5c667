"""The conversation list shown beside the chat."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual.binding import BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from backends.untrusted import one_line
from tui import keymap

if TYPE_CHECKING:
    from tui.store import Conversation


class ConversationList(OptionList):
    """Stored conversations, most recent first. Enter opens, r renames, d deletes."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(
        "sidebar.rename", "sidebar.delete", "sidebar.prompt"
    )

    @dataclass
    class Open(Message):
        conversation_id: str

    @dataclass
    class Rename(Message):
        conversation_id: str

    @dataclass
    class Delete(Message):
        conversation_id: str

    @dataclass
    class LeaveToPrompt(Message):
        pass

    def show(self, conversations: Sequence[Conversation], current: str | None) -> None:
        """Replace the list, keeping ``current`` highlighted."""
        self.clear_options()
        self.add_options(
            Option(
                Content.assemble(
                    one_line(conversation.title),
                    "\n",
                    (conversation.updated.astimezone().strftime("%d %b %H:%M"), "dim"),
                ),
                id=conversation.id,
            )
            for conversation in conversations
        )
        if not conversations:
            self.add_option(
                Option(Content.styled("No saved conversations yet.", "dim italic"), disabled=True)
            )
        if current is not None:
            with contextlib.suppress(OptionDoesNotExist):
                self.highlighted = self.get_option_index(current)

    @property
    def highlighted_id(self) -> str | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Open(event.option.id))

    def action_rename(self) -> None:
        if (conversation_id := self.highlighted_id) is not None:
            self.post_message(self.Rename(conversation_id))

    def action_delete(self) -> None:
        if (conversation_id := self.highlighted_id) is not None:
            self.post_message(self.Delete(conversation_id))

    def action_prompt(self) -> None:
        self.post_message(self.LeaveToPrompt())
