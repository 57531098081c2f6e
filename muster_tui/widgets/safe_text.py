"""Render text that comes from data or from the server, safely.

Names, error messages and addresses are never markup: ``O'Brien [/x]`` passed to a Label as a plain
string raises ``MarkupError``, and escape bytes in a name reach the terminal raw. Every such string
goes through :func:`safe`.
"""

from __future__ import annotations

import unicodedata

from textual.content import Content

_WHITESPACE_CONTROLS = {"\t", "\n", "\r"}


# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) can make
# a name display reversed or swallow the text after it ("Trojan Source"); other format
# characters (e.g. the zero-width joiner some scripts need) stay.
_BIDI_CONTROLS = {chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def strip_controls(text: str) -> str:
    """``text`` without C0 / C1 control characters or bidi overrides; tabs and line breaks
    become spaces."""
    return "".join(
        " " if char in _WHITESPACE_CONTROLS else char
        for char in text
        if char in _WHITESPACE_CONTROLS or (unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS)
    )


def safe(text: str) -> Content:
    """``text`` as literal Content: no markup parsed, no control characters."""
    return Content(strip_controls(text))
