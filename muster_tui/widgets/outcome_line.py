"""The Register screen's answer to the last scan or action, in words crew read at a glance.

Each :class:`~sync_core.device.registrar.Result` has its sentence and a colour class:
``-success`` (registered, unregistered), ``-info`` (already registered: not an error),
``-ask`` (the wrong-station prompt), ``-problem`` (refused, unknown card, could not record).
"""

from __future__ import annotations

from textual.widgets import Label

from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.safe_text import safe
from sync_core.device.registrar import Outcome, Result

CLASSES = ("-success", "-info", "-ask", "-problem")
ASK_KEYS = "F5 Yes · F9 No"


def describe(outcome: Outcome) -> tuple[str, str]:
    """The sentence for ``outcome`` and its colour class."""
    name = outcome.person.name if outcome.person else ""
    standing = outcome.standing
    match outcome.result:
        case Result.REGISTERED:
            return f"Registered: {name}", "-success"
        case Result.ALREADY_REGISTERED if standing is not None:
            return f"Already registered at {standing.place} at {standing.time_of_day}", "-info"
        case Result.ASK:
            return f"{outcome.reason}. Register here anyway?  {ASK_KEYS}", "-ask"
        case Result.REFUSED:
            return f"Refused: {outcome.reason}", "-problem"
        case Result.UNKNOWN_CARD:
            return f"Unknown card: {outcome.reason}", "-problem"
        case Result.UNREGISTERED:
            return f"Unregistered: {name}", "-success"
        case Result.NOT_REGISTERED:
            return f"Not registered here, nothing to unregister: {name}", "-info"
    return f"{outcome.result.value.capitalize()}: {name}", "-info"


class OutcomeLine(Label):
    """One line (two when narrow) saying what became of the last scan or action."""

    def show(self, text: str, kind: str) -> None:
        """Show ``text`` (from data or the server: rendered literally) in colour ``kind``;
        a scan after scan repaints only the text (no layout pass, no restyle)."""
        show_in_place(self, safe(text))
        if self.classes.intersection(CLASSES) != {kind}:
            self.remove_class(*CLASSES, update=False)
            self.add_class(kind)

    def show_outcome(self, outcome: Outcome) -> None:
        """Show what :func:`describe` says of ``outcome``."""
        self.show(*describe(outcome))
