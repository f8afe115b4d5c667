"""The parts of the chat screen (:mod:`tui.screens.chat`) that are not the screen itself.

:mod:`tui.chat.services` says what the chat uses of its host, :mod:`tui.chat.turn` draws
and stores one streaming reply, :mod:`tui.chat.conversations` manages the history list
(open, rename, delete, search, export, the sidebar) and what the history writer reports.
"""
