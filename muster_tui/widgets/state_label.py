"""A label showing one of the product's four status words, coloured by the stylesheet."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Label

from sync_core.protocol import SyncState

_STATE_CLASSES = {
    SyncState.NOT_STARTED: "-not-started",
    SyncState.IN_PROGRESS: "-in-progress",
    SyncState.SUCCESS: "-success",
    SyncState.FAILED: "-failed",
}


class StateLabel(Label):
    """Shows ``state`` ("Not started", "In progress", "Success", "Failed").

    Carries one class of ``-not-started``, ``-in-progress``, ``-success``, ``-failed``
    for the stylesheet to colour.
    """

    state: reactive[SyncState] = reactive(SyncState.NOT_STARTED)

    def watch_state(self, state: SyncState) -> None:
        """Show the new word and swap the colour class."""
        self.update(state.value)
        self.remove_class(*_STATE_CLASSES.values())
        self.add_class(_STATE_CLASSES[state])
