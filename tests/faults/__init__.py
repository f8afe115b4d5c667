"""Fault tests (filled in below)."""
