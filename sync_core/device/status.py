"""The observable state of synchronization that the engine publishes and the UI renders.

Words and rows follow the product's Synchronization page (docs/architecture.md, 'Statuses'):
one overall status for "Synchronize from server to device", one row per dataset, and a
status for "Synchronize offline data to server".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from sync_core.protocol import DATASET_LABELS, SyncState

SyncKind = Literal["full", "delta"]


class DatasetStatus(BaseModel):
    """One row of the expandable detail: a dataset on the device.

    ``count`` is the dataset's records on the device, ``changes`` the records the last run
    applied, ``failed`` the items the last run refused (bad pictures), ``last_updated`` the
    commit time of the last run that changed it (device clock, display only).
    """

    key: str
    label: str
    status: SyncState = SyncState.NOT_STARTED
    count: int = 0
    changes: int = 0
    failed: int = 0
    last_updated: datetime | None = None
    error: str | None = None


class UploadStatus(BaseModel):
    """ "Synchronize offline data to server": the outbox's state for the current server.

    ``pending`` registrations wait for upload, ``sent`` were accepted, ``failed`` were
    refused by the server (``error`` gives the reason); ``last_success`` is the last
    accepted upload (device clock, UTC).
    """

    status: SyncState = SyncState.NOT_STARTED
    pending: int = 0
    sent: int = 0
    failed: int = 0
    last_success: datetime | None = None
    error: str | None = None

    def to_cli_json(self) -> dict[str, Any]:
        """The ``upload`` object of ``muster sync`` (docs/architecture.md, 'Command line')."""
        return {"status": self.status.value} | self.model_dump(include={"pending", "sent", "failed"})


class SyncProgress(BaseModel):
    """How far a running full sync has got, as the engine measured it.

    ``records`` of the snapshot's ``records_total`` (every dataset but the portraits) are
    fetched and staged; ``portraits`` of the ``portraits_total`` to fetch (the snapshot's
    portraits the device does not hold; until the picture index is read, every portrait the
    snapshot names) are fetched; ``seconds_left`` estimates the rest from the rates so far
    (None until each kind still to fetch has a rate).
    """

    records: int = 0
    records_total: int = 0
    portraits: int = 0
    portraits_total: int = 0
    seconds_left: float | None = None

    def summary(self) -> str:
        """``Records 5,000 of 10,082 · Portraits 120 of 8,496 · about 40 s left``."""
        left = (
            "time left: estimating" if self.seconds_left is None else f"about {self.seconds_left:.0f} s left"
        )
        return (
            f"Records {self.records:,} of {self.records_total:,} · "
            f"Portraits {self.portraits:,} of {self.portraits_total:,} · {left}"
        )


def _dataset_rows() -> dict[str, DatasetStatus]:
    return {key: DatasetStatus(key=key, label=label) for key, label in DATASET_LABELS.items()}


class SyncStatus(BaseModel):
    """Everything the Synchronization screen and ``muster sync`` show.

    ``status`` is the overall "Synchronize from server to device" status of the last run of
    ``kind``; ``error`` the reason of its failure; ``seconds`` its duration. Times are aware
    UTC datetimes from the device clock (display and timer only); ``next_delta_due`` is when
    the delta timer fires next (None before the first successful sync); ``progress`` says
    how far a running full sync has got (None otherwise).
    """

    status: SyncState = SyncState.NOT_STARTED
    kind: SyncKind | None = None
    datasets: dict[str, DatasetStatus] = Field(default_factory=_dataset_rows)
    upload: UploadStatus = Field(default_factory=UploadStatus)
    cursor: int | None = None
    last_full_sync: datetime | None = None
    last_delta_sync: datetime | None = None
    next_delta_due: datetime | None = None
    error: str | None = None
    seconds: float | None = None
    progress: SyncProgress | None = None

    @property
    def can_retry(self) -> bool:
        """True when the last sync failed: the UI shows Retry in place of Sync Now."""
        return self.status is SyncState.FAILED

    @property
    def running(self) -> bool:
        """True while a sync is in progress."""
        return self.status is SyncState.IN_PROGRESS

    def to_cli_json(self) -> dict[str, Any]:
        """The object ``muster sync`` prints (docs/architecture.md, 'Command line')."""
        return {
            "status": self.status.value,
            "kind": self.kind or "full",
            "datasets": {
                key: {"status": row.status.value, "count": row.count, "changes": row.changes}
                for key, row in self.datasets.items()
            },
            "upload": self.upload.to_cli_json(),
            "cursor": self.cursor,
            "seconds": self.seconds,
            "error": self.error,
        }
