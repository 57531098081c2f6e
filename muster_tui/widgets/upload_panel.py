"""The section "Synchronize offline data to server": the outbox's upload status.

Status word (Not started while offline or with nothing to send, In progress, Success,
Failed), the registrations waiting and refused, the last successful upload, the reason of
a failure, the newest refused registrations with the server's reasons, and a **Retry**
button while any is refused or after a failure (seed, "Synchronize Offline Data to Server").
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Label

from muster_tui.widgets.safe_text import safe
from muster_tui.widgets.state_label import StateLabel
from muster_tui.widgets.utc_time import format_utc
from sync_core.device import SyncStatus
from sync_core.protocol import SyncState

REFUSALS_LISTED = 5  # the newest refused registrations listed, with the server's reasons
FIELDS = (
    ("Waiting to upload: ", "pending"),
    ("Refused by server: ", "refused"),
    ("Last upload: ", "last-upload"),
)


class UploadPanel(Vertical):
    """Renders ``status.upload``; carries the class ``-failed`` (Retry shown) after a failure."""

    status: reactive[SyncStatus] = reactive(SyncStatus)

    def compose(self) -> ComposeResult:
        """Title, status, counts, last upload, reason and Retry."""
        yield Label("Synchronize offline data to server", classes="section-title")
        with Horizontal(classes="field"):
            yield Label("Status: ", classes="name")
            yield StateLabel(id="upload-state")
        for name, ident in FIELDS:
            with Horizontal(classes="field"):
                yield Label(name, classes="name")
                yield Label(id=ident)
        yield Label(id="upload-reason")
        yield Label(id="refusals")
        with Horizontal(classes="actions"):
            yield Button("Retry upload", id="retry-upload", compact=True)

    def watch_status(self, status: SyncStatus) -> None:
        """Show the upload part of ``status``."""
        upload = status.upload
        self.set_class(upload.status is SyncState.FAILED or upload.failed > 0, "-failed")
        self.set_class(upload.error is not None, "-reason")
        self.query_one("#upload-state", StateLabel).state = upload.status
        self.query_one("#pending", Label).update(str(upload.pending))
        self.query_one("#refused", Label).update(str(upload.failed))
        self.query_one("#last-upload", Label).update(format_utc(upload.last_success))
        self.query_one("#upload-reason", Label).update(safe(f"Reason: {upload.error or 'none'}"))
        refusals = self.query_one("#refusals", Label)
        refusals.display = bool(upload.refused)
        lines = [
            f"Refused {refusal.profile_id}: {refusal.reason}" for refusal in upload.refused[:REFUSALS_LISTED]
        ]
        refusals.update(safe("\n".join(lines)))
