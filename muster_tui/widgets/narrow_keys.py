"""Footer labels that fit 40 columns.

Textual's footer is one line that does not wrap, so a screen whose labels do not fit a
narrow terminal binds the key a second time, to ``<action>_narrow`` with a shorter label,
and lets :func:`label_fits` hide the twin that does not fit the screen's width (the
breakpoints put ``-narrow`` on the screen). The screen defines ``action_<action>_narrow``
to do what ``action_<action>`` does, and refreshes its bindings on resize.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

SUFFIX = "_narrow"


def narrow_twin(key: str, action: str, description: str) -> Binding:
    """``key`` bound to ``action`` under the short label ``description``."""
    return Binding(key, action + SUFFIX, description)


def label_fits(screen: Screen[Any], action: str, twins: set[str]) -> bool:
    """False for the label of an action in ``twins`` that does not fit ``screen``: the
    long one when the screen is narrow, the short one when it is wide."""
    if action.removesuffix(SUFFIX) not in twins:
        return True
    return action.endswith(SUFFIX) == screen.has_class("-narrow")
