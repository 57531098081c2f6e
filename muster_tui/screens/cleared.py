"""The error after a retention wipe while offline (seed, "Offline Data Retention Period").

The device's data was cleared and the Mustering server cannot be reached: the screen says
so and stays, whatever key is pressed, until the device is online; then it is dismissed
and the app shows the Sign-in screen, whose sign-in runs a full sync.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Label

from muster_tui.widgets.mode_bar import ModeBar
from sync_core.device.connectivity import Connectivity
from sync_core.wording import counted

CANNOT_CONNECT = "Cannot connect to the Mustering server."


def cleared_note(kept: int) -> str:
    """Why the device is empty, and what was kept for upload."""
    note = "This device was not used for the retention period, so its data was cleared."
    if kept:
        note += f" Kept for upload after the next sign-in: {counted(kept, 'registration')}."
    return note


class ClearedOfflineScreen(Screen[None]):
    """The persistent error; ``kept`` registrations wait for upload."""

    def __init__(self, kept: int) -> None:
        super().__init__()
        self.kept = kept

    def compose(self) -> ComposeResult:
        """The error, the explanation and the mode bar."""
        with Vertical(id="cleared"):
            yield Label(CANNOT_CONNECT, id="cannot-connect")
            yield Label(cleared_note(self.kept), id="cleared-note")
            yield Label("This screen closes when the device is online.", id="cleared-wait")
        yield ModeBar()

    def on_mount(self) -> None:
        """Give way as soon as the device is online."""
        self.watch(self.app, "connectivity", self._online, init=True)

    def _online(self, connectivity: Connectivity | None) -> None:
        if connectivity is not None and connectivity.online and self.is_current:
            self.dismiss()
