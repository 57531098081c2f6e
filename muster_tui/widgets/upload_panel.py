"""The section "Synchronize offline data to server": the outbox's upload status."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label

from muster_tui.widgets.state_label import StateLabel
from sync_core.device import SyncStatus


class UploadPanel(Vertical):
    """Renders ``status.upload``: its status word and the registrations waiting."""

    status: reactive[SyncStatus] = reactive(SyncStatus)

    def compose(self) -> ComposeResult:
        """Title, status and the count waiting to upload."""
        yield Label("Synchronize offline data to server", classes="section-title")
        with Horizontal(classes="field"):
            yield Label("Status: ", classes="name")
            yield StateLabel(id="upload-state")
        with Horizontal(classes="field"):
            yield Label("Waiting to upload: ", classes="name")
            yield Label(id="pending")

    def watch_status(self, status: SyncStatus) -> None:
        """Show the upload part of ``status``."""
        self.query_one("#upload-state", StateLabel).state = status.upload.status
        self.query_one("#pending", Label).update(str(status.upload.pending))
