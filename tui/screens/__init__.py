"""Screens of the app: chat, search, settings, model choice, help and dialogs."""
