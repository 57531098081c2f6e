"""Render text that comes from data or from the server, safely.

Names, error messages and addresses are never markup: ``O'Brien [/x]`` passed to a Label as
a plain string raises ``MarkupError``, and escape bytes in a name reach the terminal raw
(../shared/FIELD-NOTES.md, "Hostile text"). Every such string goes through :func:`safe`.
"""

from __future__ import annotations

import unicodedata

from textual.content import Content

_WHITESPACE_CONTROLS = {"\t", "\n", "\r"}


def strip_controls(text: str) -> str:
    """``text`` without C0 / C1 control characters; tabs and line breaks become spaces."""
    return "".join(
        " " if char in _WHITESPACE_CONTROLS else char
        for char in text
        if char in _WHITESPACE_CONTROLS or unicodedata.category(char) != "Cc"
    )


def safe(text: str) -> Content:
    """``text`` as literal Content: no markup parsed, no control characters."""
    return Content(strip_controls(text))
