"""Counts in words crew read: ``1 registration``, ``3 registrations``."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural (``noun`` + "s") unless ``count`` is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
