"""The section "Synchronize from server to device" of the Synchronization screen.

Overall status, the progress of a running full sync (records and portraits fetched against
the totals, a bar and the time left, all as the engine measured them), times of the last
full and delta syncs and of the next delta, the reason of a failure, a **Sync Now**
button after a success (disabled while a sync runs) and a **Retry** button in its place
after a failure (docs/architecture.md, 'Statuses'), and a Collapsible holding one row per dataset.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Collapsible, Label, ProgressBar

from muster_tui.widgets.dataset_table import DatasetTable
from muster_tui.widgets.safe_text import safe
from muster_tui.widgets.state_label import StateLabel
from muster_tui.widgets.utc_time import format_utc
from sync_core.device import SyncStatus

ONLINE_ONLY_NOTE = (
    "The device keeps working in online mode: it reads from the server until a full sync "
    "succeeds. F9 continues to the menu."
)
NOT_SCHEDULED = "not yet"
TIME_FIELDS = (
    ("Last full sync: ", "last-full-sync"),
    ("Last delta sync: ", "last-delta-sync"),
    ("Next delta due: ", "next-delta-due"),
)
KEPT_DATA_NOTE = "The device keeps the data it synced before."


def failure_note(status: SyncStatus) -> str:
    """What a failed sync means for the crew member: online mode only, or the old data kept."""
    return ONLINE_ONLY_NOTE if status.last_full_sync is None else KEPT_DATA_NOTE


class DownloadPanel(Vertical):
    """Renders a :class:`SyncStatus` as the "from server to device" section.

    ``details_open`` shows the per-dataset rows from the start.

    The panel carries the class ``-failed`` after a failure: Retry shown, Sync Now hidden.
    """

    status: reactive[SyncStatus] = reactive(SyncStatus)

    def __init__(self, *, details_open: bool = False) -> None:
        super().__init__()
        self.details_open = details_open

    def compose(self) -> ComposeResult:
        """Title, status lines, the action buttons and the dataset details."""
        yield Label("Synchronize from server to device", classes="section-title")
        with Horizontal(classes="field"):
            yield Label("Status: ", classes="name")
            yield StateLabel(id="download-state")
        with Vertical(id="progress"):
            yield Label(id="progress-figures")
            yield ProgressBar(id="progress-bar", show_eta=False)
        for name, ident in TIME_FIELDS:
            with Horizontal(classes="field"):
                yield Label(name, classes="name")
                yield Label(id=ident)
        yield Label(id="reason")
        yield Label(id="note")
        with Horizontal(classes="actions"):
            yield Button("Sync Now", id="sync-now", compact=True)
            yield Button("Retry", id="retry", compact=True)
        with Collapsible(
            title="Details", collapsed=not self.details_open, collapsed_symbol=">", expanded_symbol="v"
        ):
            yield DatasetTable().data_bind(DownloadPanel.status)

    def watch_status(self, status: SyncStatus) -> None:
        """Show ``status``: words, times, reason and which button is offered."""
        self.set_class(status.can_retry, "-failed")
        self.query_one("#download-state", StateLabel).state = status.status
        self.query_one("#last-full-sync", Label).update(format_utc(status.last_full_sync))
        self.query_one("#last-delta-sync", Label).update(format_utc(status.last_delta_sync))
        next_due = format_utc(status.next_delta_due) if status.next_delta_due else NOT_SCHEDULED
        self.query_one("#next-delta-due", Label).update(next_due)
        self.query_one("#reason", Label).update(safe(f"Reason: {status.error or 'unknown'}"))
        self.query_one("#note", Label).update(failure_note(status))
        self.query_one("#sync-now", Button).disabled = status.running
        progress = status.progress
        self.query_one("#progress").display = progress is not None
        if progress is not None:
            self.query_one("#progress-figures", Label).update(progress.summary())
            total = progress.records_total + progress.portraits_total
            self.query_one(ProgressBar).update(total=total, progress=progress.records + progress.portraits)
