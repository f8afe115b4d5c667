"""Widgets of the chat screen. They display and post messages; they never call a model."""
