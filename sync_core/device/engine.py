"""The sync engine: full sync from the server into the device store.

UI-agnostic (DESIGN.md): it publishes a :class:`SyncStatus` to subscribers and offers async
methods; the Textual app and the headless ``muster sync`` drive the same engine. DuckDB work
runs in worker threads (``asyncio.to_thread``) so the event loop never blocks.

A full sync (seed, "Synchronize from Server to Device"; DESIGN.md invariant 4):

1. ask the server for a snapshot manifest (one consistent read and its cursor);
2. fetch each dataset into staging tables, publishing progress per dataset;
3. fetch the portraits the snapshot names, in batches of ``PICTURE_BATCH_MAX``, refusing
   each one that is oversize, not a JPEG or does not match its hash (invariant 8);
4. swap staging in with the cursor in one transaction.

Any failure drops staging and leaves the previous data (or, on a first sync, nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

import duckdb
import pyarrow as pa

from sync_core.clock import Clock
from sync_core.device.client import ServerClient
from sync_core.device.status import DatasetStatus, SyncStatus
from sync_core.device.store import DatasetRecord, DeviceStore, SyncPoint
from sync_core.errors import SyncError
from sync_core.protocol import DATASET_LABELS, DATASETS, PICTURE_BATCH_MAX, PICTURE_MAX_BYTES, SyncState

log = logging.getLogger(__name__)
JPEG_MAGIC = b"\xff\xd8\xff"
Subscriber = Callable[[SyncStatus], None]
# Bounds one whole run (DESIGN.md invariant 7); each request has its own, shorter timeout.
SYNC_DEADLINE_SECONDS = 600.0


def _reason(exc: Exception) -> str:
    """The status line for a failed run."""
    if isinstance(exc, SyncError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"Sync did not finish within {SYNC_DEADLINE_SECONDS:.0f} s"
    return f"Unexpected error on the device: {type(exc).__name__}: {exc}"


def picture_problem(sha256: str, jpeg: bytes | None) -> str | None:
    """Why a fetched portrait must be refused, or None when it is good.

    Refused: missing bytes, over ``PICTURE_MAX_BYTES``, not starting with the JPEG SOI
    marker, or bytes whose SHA-256 differs from the hash the row names.
    """
    if jpeg is None:
        return "no bytes"
    if len(jpeg) > PICTURE_MAX_BYTES:
        return f"oversize ({len(jpeg)} bytes)"
    if not jpeg.startswith(JPEG_MAGIC):
        return "not a JPEG"
    if hashlib.sha256(jpeg).hexdigest() != sha256:
        return "content does not match its hash"
    return None


class SyncEngine:
    """Keeps a :class:`DeviceStore` in step with the server behind ``client``.

    ``clock`` stamps display times only. Runs never overlap: a call while one runs waits
    for it and returns its result.
    """

    def __init__(self, store: DeviceStore, client: ServerClient, clock: Clock) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self._subscribers: list[Subscriber] = []
        self._lock = asyncio.Lock()
        self._status = self._status_from_store()

    @property
    def status(self) -> SyncStatus:
        """The latest published status (a copy is not made; do not mutate)."""
        return self._status

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new status; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def needs_full_sync(self, server_id: str) -> bool:
        """True on the first sign-in on this device for the server ``server_id`` (seed)."""
        return not self.store.has_synced_with(server_id)

    async def full_sync(self, server_id: str, *, portraits: bool = True) -> SyncStatus:
        """Replace the device's data with a fresh snapshot; never raises SyncError.

        Returns the final status: Success, or Failed with the reason in ``error``.
        ``portraits=False`` leaves the picture bytes out (the benchmark's rows-only run).
        """
        if self._lock.locked():
            async with self._lock:
                return self._status
        async with self._lock:
            return await self._run_full_sync(server_id, portraits)

    async def _run_full_sync(self, server_id: str, portraits: bool) -> SyncStatus:
        started = self.clock.monotonic()
        self._publish(self._fresh_run())
        try:
            async with asyncio.timeout(SYNC_DEADLINE_SECONDS):
                point, records, failed = await self._snapshot_into_store(portraits)
        except Exception as exc:  # noqa: BLE001 - every failure must end "In progress"
            reason = _reason(exc)
            log.warning("full sync failed: %s", reason, exc_info=not isinstance(exc, SyncError))
            await asyncio.to_thread(self.store.drop_staging)
            records = await asyncio.to_thread(self.store.datasets)
            self._publish(self._failed(records, reason, self.clock.monotonic() - started))
            return self._status
        if server_id != point.server_id:
            log.warning("server id changed since sign-in: %s -> %s", server_id, point.server_id)
        self._publish(self._succeeded(records, failed, point, self.clock.monotonic() - started))
        return self._status

    async def _snapshot_into_store(self, portraits: bool) -> tuple[SyncPoint, dict[str, DatasetRecord], dict[str, int]]:
        await asyncio.to_thread(self.store.begin_staging)
        manifest = await self.client.create_snapshot()
        failed = await self._fetch_all(manifest.snapshot_id, portraits)
        point = SyncPoint(manifest.server_id, self.client.base_url, manifest.cursor, self.clock.now())
        records = await asyncio.to_thread(self.store.swap_in, point, failed, self.clock.now())
        return point, records, failed

    async def _fetch_all(self, snapshot_id: str, portraits: bool) -> dict[str, int]:
        failed = 0
        for key in DATASETS:
            self._mark(key, SyncState.IN_PROGRESS)
            rows = await self.client.fetch_snapshot(snapshot_id, key)
            if key == "pictures":
                await asyncio.to_thread(self.store.stage_picture_index, rows)
                failed = await self._fetch_pictures() if portraits else 0
            else:
                await asyncio.to_thread(self._stage, key, rows)
            self._mark(key, SyncState.SUCCESS, count=rows.num_rows)
        return {"pictures": failed}

    def _stage(self, key: str, rows: pa.Table) -> None:
        try:
            self.store.stage(key, rows)
        except duckdb.Error as exc:
            raise SyncError(f"{key}: the server sent rows the device cannot store ({exc})") from exc

    async def _fetch_pictures(self) -> int:
        hashes = await asyncio.to_thread(self.store.staged_picture_hashes)
        failed = 0
        for start in range(0, len(hashes), PICTURE_BATCH_MAX):
            batch = await self.client.fetch_pictures(hashes[start : start + PICTURE_BATCH_MAX])
            good, refused = _good_pictures(batch, set(hashes[start : start + PICTURE_BATCH_MAX]))
            failed += refused
            await asyncio.to_thread(self.store.stage, "pictures", good)
        return failed

    # -- status ----------------------------------------------------------------------

    def _publish(self, status: SyncStatus) -> None:
        self._status = status
        for callback in list(self._subscribers):
            callback(status)

    def _mark(self, key: str, state: SyncState, count: int | None = None) -> None:
        row = self._status.datasets[key]
        update = {"status": state} if count is None else {"status": state, "changes": count}
        datasets = {**self._status.datasets, key: row.model_copy(update=update)}
        self._publish(self._status.model_copy(update={"datasets": datasets}))

    def _fresh_run(self) -> SyncStatus:
        datasets = {
            key: row.model_copy(update={"status": SyncState.NOT_STARTED, "changes": 0, "error": None})
            for key, row in self._status.datasets.items()
        }
        return self._status.model_copy(
            update={"status": SyncState.IN_PROGRESS, "kind": "full", "datasets": datasets, "error": None}
        )

    def _failed(self, records: dict[str, DatasetRecord], reason: str, seconds: float) -> SyncStatus:
        datasets = {
            key: row.model_copy(
                update={
                    "status": SyncState.SUCCESS if row.status is SyncState.SUCCESS else SyncState.FAILED,
                    "count": records[key].count,
                }
            )
            for key, row in self._status.datasets.items()
        }
        return self._status.model_copy(
            update={"status": SyncState.FAILED, "datasets": datasets, "error": reason, "seconds": seconds}
        )

    def _succeeded(
        self, records: dict[str, DatasetRecord], failed: dict[str, int], point: SyncPoint, seconds: float
    ) -> SyncStatus:
        datasets = _rows_from_records(records, SyncState.SUCCESS)
        if failed.get("pictures"):
            note = f"{failed['pictures']} portrait(s) refused"
            datasets["pictures"] = datasets["pictures"].model_copy(update={"error": note})
        return self._status.model_copy(
            update={
                "status": SyncState.SUCCESS,
                "datasets": datasets,
                "cursor": point.cursor,
                "last_full_sync": point.last_full_sync,
                "seconds": seconds,
            }
        )

    def _status_from_store(self) -> SyncStatus:
        point = self.store.sync_point()
        if point is None:
            return SyncStatus()
        return SyncStatus(
            status=SyncState.SUCCESS,
            kind="full",
            datasets=_rows_from_records(self.store.datasets(), SyncState.SUCCESS),
            cursor=point.cursor,
            last_full_sync=point.last_full_sync,
        )


def _rows_from_records(records: dict[str, DatasetRecord], state: SyncState) -> dict[str, DatasetStatus]:
    return {
        key: DatasetStatus(
            key=key,
            label=DATASET_LABELS[key],
            status=state,
            count=record.count,
            changes=record.changes,
            failed=record.failed,
            last_updated=record.last_updated,
        )
        for key, record in records.items()
    }


def _good_pictures(batch: pa.Table, asked: set[str]) -> tuple[pa.Table, int]:
    """Keep the portraits of ``batch`` that were asked for and pass :func:`picture_problem`."""
    keep = []
    for sha256, profile_id, jpeg in zip(*(batch.column(c).to_pylist() for c in batch.column_names)):
        problem = "not asked for" if sha256 not in asked else picture_problem(sha256, jpeg)
        if problem:
            log.warning("portrait %s of profile %r refused: %s", sha256, profile_id, problem)
        keep.append(problem is None)
    refused = len(asked) - sum(keep)
    return batch.filter(pa.array(keep, type=pa.bool_())), refused
