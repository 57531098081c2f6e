"""The detail of "Synchronize from server to device": one row per dataset.

Each row shows the dataset's label (DATASET_LABELS), its records, the changes the last run
applied, its status, when it was last updated and any error (e.g. refused portraits). Each
row's cells are a small grid: five columns on a wide terminal; on a narrow one, label,
records and changes on one line, status and time on the next (muster.tcss).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label

from muster_tui.widgets.safe_text import safe
from muster_tui.widgets.state_label import StateLabel
from muster_tui.widgets.utc_time import format_utc
from sync_core.device import DatasetStatus, SyncStatus
from sync_core.protocol import DATASET_LABELS


class DatasetHeader(Widget):
    """Column titles above the dataset rows."""

    def compose(self) -> ComposeResult:
        """The column titles, in a grid like the rows'."""
        with Grid(classes="cells"):
            yield Label("Dataset", classes="cell-label")
            yield Label("Records", classes="cell-count")
            yield Label("Changes", classes="cell-changes")
            yield Label("Status", classes="cell-state")
            yield Label("Last updated", classes="cell-updated")


class DatasetRow(Widget):
    """One dataset: label, records, status, last updated, and its error below."""

    def __init__(self, key: str) -> None:
        super().__init__(id=f"dataset-{key}")
        self.key = key

    def compose(self) -> ComposeResult:
        """The row's cells; the error line stays hidden until there is an error."""
        with Grid(classes="cells"):
            yield Label(DATASET_LABELS[self.key], classes="cell-label")
            yield Label("0", classes="cell-count")
            yield Label("0", classes="cell-changes")
            yield StateLabel(classes="cell-state")
            yield Label("", classes="cell-updated")
        yield Label("", classes="row-error")

    def show(self, dataset: DatasetStatus) -> None:
        """Fill the cells from ``dataset`` (a running full sync's rows count what the device
        will hold once it is swapped in: the engine's figures)."""
        self.query_one(".cell-count", Label).update(str(dataset.count))
        self.query_one(".cell-changes", Label).update(str(dataset.changes))
        self.query_one(StateLabel).state = dataset.status
        self.query_one(".cell-updated", Label).update(format_utc(dataset.last_updated))
        error = self.query_one(".row-error", Label)
        error.update(safe(dataset.error or ""))
        error.display = dataset.error is not None


class DatasetTable(Vertical):
    """The header and one :class:`DatasetRow` per dataset, kept in step with ``status``."""

    status: reactive[SyncStatus] = reactive(SyncStatus)

    def compose(self) -> ComposeResult:
        """Header, then the rows in sync order."""
        yield DatasetHeader()
        for key in DATASET_LABELS:
            yield DatasetRow(key)

    def watch_status(self, status: SyncStatus) -> None:
        """Show each dataset of the new status in its row."""
        for row in self.query(DatasetRow):
            row.show(status.datasets[row.key])
