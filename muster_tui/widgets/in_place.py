"""Changing a label's text with as little redrawing as it needs.

A layout pass re-arranges every widget of the screen (~8 ms on the Register screen here,
where a card scan has 20 ms from the Enter key to the result on screen). A label whose
width is fixed and whose new text takes as many lines as the old one only needs a repaint,
and a label whose text stays the same needs nothing.
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Size
from textual.widgets import Label


def show_in_place(label: Label, content: Content | str) -> None:
    """Show ``content`` in ``label``: nothing when the label shows that text already, a
    layout pass only when the label's width is ``auto`` or the text's height at the
    label's width differs from the height laid out; else a repaint of the label alone."""
    if label.content == content:
        return
    label.update(content, layout=False)
    styles, shown = label.styles, label.content_size
    if styles.width is None or styles.width.is_auto or not shown.width:
        label.refresh(layout=True)
    elif styles.height is None or styles.height.is_auto:
        if label.get_content_height(Size(0, 0), Size(0, 0), shown.width) != shown.height:
            label.refresh(layout=True)
