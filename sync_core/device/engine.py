"""The sync engine: full and delta sync from the server into the device store.

UI-agnostic (docs/architecture.md, 'Who may import whom'): it publishes a :class:`SyncStatus` to
subscribers and offers async methods; the Textual app and the headless ``muster sync`` drive the
same engine. DuckDB work runs in worker threads (``asyncio.to_thread``) so the event loop never
blocks. Runs never overlap: a request while one runs waits for it and returns its result
(coalesced).

Full sync (seed, "Synchronize from Server to Device"; docs/architecture.md, 'A full sync swaps in
whole'): a snapshot manifest (one consistent read and its cursor), each dataset into staging with
progress, the portraits it names (those the device lacks, in batches of about
``PORTRAIT_BATCH_BYTES``; the ones it holds are the same bytes by hash), then one transaction swaps
staging and the cursor in. Any failure drops staging and leaves the previous data (on a first sync,
nothing). Portrait bytes are files beside the store (:mod:`~sync_core.device.pictures`), written as
they arrive: the memory a run takes does not grow with the ship's portraits.

Delta sync (docs/architecture.md, 'Server sequence, not device time', 'Cursor and rows commit
together', 'Deletes travel as tombstones'): pages of changes after the stored cursor, each page
applied with its new cursor in one transaction; then the portraits the device lacks, and removal of
portraits nothing references. HTTP 410 (cursor older than the tombstone horizon) turns the run into
a full sync.

Every portrait is checked (:func:`~sync_core.protocol.picture_problem`); a bad one fails alone
('Bad input fails alone').
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, TypeVar

import duckdb

from sync_core.clock import Clock
from sync_core.device.arrow_rows import ArrowStream
from sync_core.device.client import ServerClient
from sync_core.device.progress import FullSyncMeter
from sync_core.device.status import (
    DatasetStatus,
    SyncKind,
    SyncProgress,
    SyncStatus,
    UploadStatus,
    refusal_line,
)
from sync_core.device.store import STREAM_ROWS, DatasetRecord, DeviceStore, Rows, SyncPoint
from sync_core.errors import FullSyncRequired, SyncError
from sync_core.protocol import (
    DATASET_LABELS,
    DATASETS,
    PICTURE_BATCH_MAX,
    PICTURE_MAX_BYTES,
    SyncState,
    picture_problem,
)
from sync_core.wording import counted

log = logging.getLogger(__name__)
# The Profile picture row names at most this many refused portraits.
REFUSED_NAMED = 5
Subscriber = Callable[[SyncStatus], None]
Staged = TypeVar("Staged")
# Takes the rows (sha256, profile_id) of good portraits whose files are written, the number
# refused, how many of them count as this run's changes, and the time; returns the portraits
# the live store gained.
PictureSink = Callable[[list[tuple[str, str]], int, int, datetime], int]
# Hands out the next portrait hashes to fetch, at most as many as asked; none when done.
HashSource = Callable[[int], Awaitable[list[str]]]
# Bounds one whole run (docs/architecture.md, 'Every request has a timeout'); each request has its
# own, shorter timeout.
SYNC_DEADLINE_SECONDS = 600.0
DEFAULT_PAGE_SIZE = 1000
# The bytes of portraits asked for per request: the first asks for as many as fit at
# PICTURE_MAX_BYTES each, later ones as many as fit at the largest seen so far (at most
# PICTURE_BATCH_MAX). The answer is read a record batch (about 1 MB) at a time.
PORTRAIT_BATCH_BYTES = 4 * 1024 * 1024
# The general parameter naming the delta interval, and its default (seed: every 30 minutes).
INTERVAL_PARAMETER = "delta_sync_interval_minutes"
DEFAULT_INTERVAL_MINUTES = 30
# After a failed run the timer tries again this soon (or at the interval, if shorter).
RETRY_AFTER = timedelta(minutes=1)


def _reason(exc: Exception) -> str:
    """The status line for a failed run."""
    if isinstance(exc, SyncError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"Sync did not finish within {SYNC_DEADLINE_SECONDS:.0f} s"
    return f"Unexpected error on the device: {type(exc).__name__}: {exc}"


class SyncEngine:
    """Keeps a :class:`DeviceStore` in step with the server behind ``client``.

    ``clock`` stamps display times and schedules the delta timer; it never decides what to fetch
    (docs/architecture.md, 'Server sequence, not device time'). ``page_size`` is the number of
    changes asked for per page.
    """

    def __init__(
        self, store: DeviceStore, client: ServerClient, clock: Clock, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.page_size = page_size
        self._subscribers: list[Subscriber] = []
        self._lock = asyncio.Lock()
        self._interval: timedelta | None = None
        self._portraits_checked = False
        self._refused: dict[str, str] = {}  # this run's refused portraits: hash -> who
        self._status = self._status_from_store()

    @property
    def status(self) -> SyncStatus:
        """The latest published status (shared; do not mutate)."""
        return self._status

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new status; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def reload(self) -> None:
        """Publish the status the store holds now (after a retention wipe cleared it)."""
        self._interval = None
        self._portraits_checked = False
        self._publish(self._status_from_store())

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold syncs off for the block: waits for a running sync to end, and a sync asked
        for meanwhile waits, then returns the status without running (the retention wipe
        runs here, so no sync in flight writes its cursor into the store the wipe cleared)."""
        async with self._lock:
            yield

    def show_upload(self, upload: UploadStatus) -> None:
        """Publish the outbox's upload status (from the uploader) with the rest."""
        self._publish(self._status.model_copy(update={"upload": upload}))

    def not_run(self, reason: str, full: bool = False) -> SyncStatus:
        """Publish and return the status of a run that could not start (offline, no
        sign-in): Failed with ``reason``, no dataset touched, ``kind`` the sync that would
        have run (full when ``full`` or the device never synced)."""
        datasets = {
            key: row.model_copy(update={"status": SyncState.NOT_STARTED, "changes": 0})
            for key, row in self._status.datasets.items()
        }
        kind: SyncKind = "full" if full or self._status.cursor is None else "delta"
        update = {"status": SyncState.FAILED, "kind": kind, "datasets": datasets, "error": reason}
        self._publish(self._status.model_copy(update=update))
        return self._status

    def needs_full_sync(self, server_id: str) -> bool:
        """True on the first sign-in on this device for the server ``server_id`` (seed)."""
        return not self.store.has_synced_with(server_id)

    async def sync(self, server_id: str, *, full: bool = False) -> SyncStatus:
        """A full sync when ``full`` or when the device has not synced with ``server_id``
        (its cursor is bound to another server, or none); else a delta sync."""
        if full or await asyncio.to_thread(self.needs_full_sync, server_id):
            return await self.full_sync()
        return await self.delta_sync()

    async def full_sync(self, *, portraits: bool = True) -> SyncStatus:
        """Replace the device's data with a fresh snapshot; never raises SyncError.

        Returns the final status: Success, or Failed with the reason in ``error``.
        ``portraits=False`` leaves the picture bytes out (the benchmark's rows-only run).
        """
        return await self._exclusive(lambda: self._run("full", lambda: self._full(portraits)))

    async def delta_sync(self) -> SyncStatus:
        """Apply the server's changes since the stored cursor; never raises SyncError.

        Falls back to a full sync when the server answers 410 (tombstone horizon).
        """
        return await self._exclusive(lambda: self._run("delta", self._delta))

    # -- runs ------------------------------------------------------------------------

    async def _exclusive(self, run: Callable[[], Awaitable[SyncStatus]]) -> SyncStatus:
        if self._lock.locked():
            async with self._lock:
                return self._status
        async with self._lock:
            return await run()

    async def _run(self, kind: SyncKind, body: Callable[[], Awaitable[dict[str, int]]]) -> SyncStatus:
        """Publish In progress, run ``body`` (returns refused items per dataset) within the
        deadline, and publish Success or Failed; a failure drops any staging."""
        started = self.clock.monotonic()
        self._refused = {}
        self._publish(self._fresh_run(kind))
        try:
            async with asyncio.timeout(SYNC_DEADLINE_SECONDS):
                failed = await body()
        except asyncio.CancelledError:
            # No await here: the task is going away. The next full sync drops the staging.
            stopped = {
                "status": SyncState.FAILED,
                "error": "Sync was stopped before it finished",
                "progress": None,
            }
            self._publish(self._status.model_copy(update=stopped))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure must end "In progress"
            self._portraits_checked = False
            reason = _reason(exc)
            log.warning(
                "%s sync failed: %s", self._status.kind, reason, exc_info=not isinstance(exc, SyncError)
            )
            await asyncio.to_thread(self.store.drop_staging)
            try:
                await asyncio.to_thread(self.store.note_failure, reason)
            except duckdb.Error:  # the store may be what failed: the run still ends Failed
                log.exception("could not keep the failure in the store")
            self._publish(await self._finished(SyncState.FAILED, started, error=reason))
            return self._status
        self._publish(await self._finished(SyncState.SUCCESS, started, failed=failed))
        return self._status

    async def _full(self, portraits: bool) -> dict[str, int]:
        """Stage every dataset, then the portraits the device lacks, and swap them in. Each
        row stays In progress until the swap; its ``count`` is what the device will hold
        and its ``changes`` what this run fetched (the portraits it already held are
        reused, not changes); ``progress`` counts the records and portraits fetched."""
        await asyncio.to_thread(self.store.begin_staging)
        manifest = await self.client.create_snapshot()
        records_total = sum(count for key, count in manifest.counts.items() if key != "pictures")
        portraits_total = manifest.counts.get("pictures", 0) if portraits else 0
        meter = FullSyncMeter(self.clock.monotonic, records_total, portraits_total)
        self._show_progress(meter.records_fetched(0))
        failed, changes = 0, {}
        for key in DATASETS:
            self._mark(key, SyncState.IN_PROGRESS)
            if key == "pictures":
                # without portraits (the rows-only benchmark) the live store holds none
                index = self.store.stage_picture_index if portraits else _no_portraits
                staged, missing = await self.client.fetch_snapshot(
                    manifest.snapshot_id, key, functools.partial(self._stage, key, index)
                )
                self._show_progress(meter.portraits_to_fetch(missing))
                self._mark(key, SyncState.IN_PROGRESS, count=staged - missing, changes=0)
                hashes = self._staged_missing() if missing else _listed([])
                refused = await self._fetch_pictures(hashes, self._keep_portraits, meter=meter)
                await asyncio.to_thread(self.store.unstage_pictures, list(refused))
                failed = len(refused)
                changes[key] = self._status.datasets[key].changes
            else:
                stage = functools.partial(self.store.stage, key)
                staged = await self.client.fetch_snapshot(
                    manifest.snapshot_id, key, functools.partial(self._stage, key, stage)
                )
                self._show_progress(meter.records_fetched(staged))
                changes[key] = staged
                self._mark(key, SyncState.IN_PROGRESS, count=staged, changes=staged)
        point = SyncPoint(manifest.server_id, self.client.base_url, manifest.cursor, self.clock.now())
        await asyncio.to_thread(self.store.swap_in, point, {"pictures": failed}, self.clock.now(), changes)
        return {"pictures": failed}

    async def _delta(self) -> dict[str, int]:
        point = await asyncio.to_thread(self.store.sync_point)
        assert point is not None, "a delta needs a prior full sync"
        refused_before = self._status.datasets["pictures"].failed
        try:
            named = await self._apply_pages(point.cursor)
        except FullSyncRequired:
            log.info("cursor %s is past the server's tombstone horizon: full sync", point.cursor)
            self._publish(self._fresh_run("full"))
            return await self._full(portraits=True)
        for key in DATASETS:
            self._mark(key, SyncState.IN_PROGRESS if key == "pictures" else SyncState.SUCCESS)
        # Every portrait is checked after a refusal, after a failed run and once per process:
        # a run that ends between a committed page and its portraits' fetch must not leave
        # them missing for good, nor an orphan left by an odd edit stay.
        check_all = bool(refused_before) or not self._portraits_checked
        if not named and not check_all:
            return {}
        if not self._portraits_checked:
            removed = await asyncio.to_thread(self.store.prune_pictures)
            log.info("removed %s no profile names", counted(removed, "portrait"))
            held = self._status.datasets["pictures"].count - removed
            self._mark("pictures", SyncState.IN_PROGRESS, count=held)
        if check_all:
            hashes = await asyncio.to_thread(self.store.missing_pictures)
        else:  # new portraits have new hashes: no need to ask the store which it lacks
            hashes = sorted(set(named))
        # a portrait whose row a page brought was counted with the page: one change, not two
        refused = await self._fetch_pictures(_listed(hashes), self._add_pictures, counted=set(named))
        self._portraits_checked = True
        return {"pictures": len(refused)}

    async def _apply_pages(self, cursor: int) -> list[str]:
        """Apply pages until the server has no more; the portrait hashes their reservations name."""
        first, named = True, []
        while True:
            page = await self.client.fetch_changes(cursor, self.page_size)
            at = self.clock.now()
            gained = await asyncio.to_thread(self.store.apply_page, page, first, at)
            for key, count in page.changes.items():
                row = self._status.datasets[key]
                figures = {
                    "changes": row.changes + count,
                    "count": row.count + gained[key],
                    "last_updated": at,
                }
                self._mark(key, SyncState.IN_PROGRESS, **figures)
            if "pictures" in page.upserts:  # a new portrait is journaled as a picture row
                named += page.upserts["pictures"].values("sha256")
            cursor, first = page.cursor, False
            if not page.more:
                return named

    # -- pictures ----------------------------------------------------------------------

    def _staged_missing(self) -> HashSource:
        """The staged portraits the device lacks, read from the store ``STREAM_ROWS`` hashes
        at a time in hash order (a ship's 50,000 hashes held as Python strings took ~6 MB)."""
        after, ahead = "", deque[str]()

        async def take(count: int) -> list[str]:
            nonlocal after
            while len(ahead) < count:
                read = await asyncio.to_thread(self.store.staged_missing_pictures, after, STREAM_ROWS)
                if not read:
                    break
                ahead.extend(read)
                after = read[-1]
            return [ahead.popleft() for _ in range(min(count, len(ahead)))]

        return take

    async def _fetch_pictures(
        self,
        hashes: HashSource,
        sink: PictureSink,
        counted: Collection[str] = (),
        meter: FullSyncMeter | None = None,
    ) -> dict[str, str]:
        """Fetch what ``hashes`` hands out in requests of about ``PORTRAIT_BATCH_BYTES``, each answer's good
        portraits written to their files a record batch at a time as it arrives
        (:meth:`_keep_checked`), then their rows handed to ``sink``; return the refused ones
        (hash -> whose, for the status). Each good portrait is a change of this run unless its
        hash is in ``counted``; a full sync's ``meter`` counts every portrait fetched. A
        delta's portraits are live at once (``last_updated`` moves); a full sync's are staged
        until the swap."""
        failed: dict[str, str] = {}
        largest = PICTURE_MAX_BYTES
        while asked := await hashes(min(PICTURE_BATCH_MAX, max(1, PORTRAIT_BATCH_BYTES // largest))):
            kept = await self.client.fetch_pictures(asked, functools.partial(self._keep_checked, asked))
            largest = kept.largest or largest
            failed |= kept.refused
            self._refused |= kept.refused
            at = self.clock.now()
            fresh = sum(sha256 not in counted for sha256, _ in kept.rows)
            gained = await asyncio.to_thread(sink, kept.rows, len(kept.refused), fresh, at)
            row = self._status.datasets["pictures"]
            figures: dict[str, object] = {"changes": row.changes + fresh, "count": row.count + gained}
            if meter is None:
                figures["last_updated"] = at
            else:
                self._show_progress(meter.portraits_fetched(len(asked)))
            self._mark("pictures", SyncState.IN_PROGRESS, **figures)
        return failed

    def _keep_checked(self, asked: list[str], stream: ArrowStream) -> _Kept:
        """Check the portraits ``stream`` yields (an answer to ``asked``, read as it arrives)
        and write the good ones to their files, one at a time. Raises MalformedResponse for a
        batch that does not decode, OSError when a file cannot be written."""
        wanted, rows, largest = set(asked), [], 0
        refused: dict[str, str] = {}
        for batch in stream:
            for sha256, profile_id, jpeg in batch.tuples():
                problem = "not asked for" if sha256 not in wanted else picture_problem(sha256, jpeg)
                if problem:
                    log.warning("portrait %s of profile %r refused: %s", sha256, profile_id, problem)
                    refused[sha256] = f"{profile_id} ({problem})"
                    continue
                self.store.keep_portrait(sha256, jpeg)
                rows.append((sha256, profile_id))
                largest = max(largest, len(jpeg))
        held = {sha256 for sha256, _ in rows}
        missing = {sha256: f"portrait {sha256[:12]} (not sent)" for sha256 in asked if sha256 not in held}
        missing.update((sha256, who) for sha256, who in refused.items() if sha256 in missing)
        return _Kept(rows, missing, largest)

    def _keep_portraits(self, rows: list[tuple[str, str]], refused: int, changes: int, at: datetime) -> int:
        return len(rows)  # written already; what the device will hold once swapped in

    def _add_pictures(self, rows: list[tuple[str, str]], refused: int, changes: int, at: datetime) -> int:
        return self.store.add_pictures(rows, refused, changes, at)

    def _stage(self, key: str, stage: Callable[[Rows], Staged], rows: Rows) -> Staged:
        """``stage(rows)``, a failure to decode or store them as a SyncError naming ``key``."""
        try:
            return stage(rows)
        except duckdb.Error as exc:
            raise SyncError(f"{key}: the server sent rows the device cannot store ({exc})") from exc

    # -- status ----------------------------------------------------------------------

    def _publish(self, status: SyncStatus) -> None:
        self._status = status
        for callback in list(self._subscribers):
            callback(status)

    def _show_progress(self, progress: SyncProgress) -> None:
        self._publish(self._status.model_copy(update={"progress": progress}))

    def _mark(self, key: str, state: SyncState, **figures: object) -> None:
        """Publish dataset ``key``'s new ``state`` and any other ``figures`` of its row
        (``changes``, ``count``, ``last_updated``)."""
        row = self._status.datasets[key]
        datasets = {**self._status.datasets, key: row.model_copy(update={"status": state, **figures})}
        self._publish(self._status.model_copy(update={"datasets": datasets}))

    def _fresh_run(self, kind: SyncKind) -> SyncStatus:
        datasets = {
            key: row.model_copy(update={"status": SyncState.NOT_STARTED, "changes": 0, "error": None})
            for key, row in self._status.datasets.items()
        }
        update = {"status": SyncState.IN_PROGRESS, "kind": kind, "datasets": datasets, "error": None}
        return self._status.model_copy(update=update)

    async def _finished(
        self,
        state: SyncState,
        started: float,
        *,
        error: str | None = None,
        failed: dict[str, int] | None = None,
    ) -> SyncStatus:
        """The status after a run. A successful delta kept each dataset's figures up to date
        as its pages applied; otherwise they are re-read from the store."""
        delta_done = state is SyncState.SUCCESS and self._status.kind == "delta"
        keys = [] if delta_done else list(DATASETS)
        parameters_moved = not delta_done or bool(self._status.datasets["parameters"].changes)
        point, records, interval = await asyncio.to_thread(self._read_after_run, keys, parameters_moved)
        datasets = {
            key: _after_run(row, records.get(key), state is SyncState.SUCCESS, self._status.kind == "delta")
            for key, row in self._status.datasets.items()
        }
        refused = (failed or {}).get("pictures", 0)
        datasets["pictures"] = datasets["pictures"].model_copy(update={"failed": refused})
        if refused:  # the rest went on, but the Profile picture row says what is missing
            datasets["pictures"] = datasets["pictures"].model_copy(
                update={"status": SyncState.FAILED, "error": _refused_text(refused, self._refused)}
            )
        return self._status.model_copy(
            update={
                "status": state,
                "datasets": datasets,
                "error": error,
                "progress": None,
                "seconds": self.clock.monotonic() - started,
                **_point_fields(point),
                "next_delta_due": self._next_due(point, state, interval),
            }
        )

    def _read_after_run(
        self, keys: list[str], parameters_moved: bool
    ) -> tuple[SyncPoint | None, dict[str, DatasetRecord], timedelta]:
        """The stored sync point, the records of ``keys``, and the delta interval (re-read
        only when the general parameters may have moved)."""
        if self._interval is None or parameters_moved:
            self._interval = self.delta_interval()
        records = self.store.datasets(keys) if keys else {}
        return self.store.sync_point(), records, self._interval

    def _next_due(self, point: SyncPoint | None, state: SyncState, interval: timedelta) -> datetime | None:
        if point is None or point.last_success is None:
            return None
        if state is SyncState.FAILED:
            return self.clock.now() + min(RETRY_AFTER, interval)
        return point.last_success + interval

    def delta_interval(self) -> timedelta:
        """The delta interval from the synced general parameter (default 30 minutes).

        Read at each completion, so a changed parameter applies from the next cycle. A value
        that is not a whole number >= 1 gives the default; one above the store's cap, the cap
        (:meth:`DeviceStore.whole_parameter`).
        """
        return timedelta(minutes=self.store.whole_parameter(INTERVAL_PARAMETER, DEFAULT_INTERVAL_MINUTES))

    def _status_from_store(self) -> SyncStatus:
        """What a restarted app shows: the stored figures, and the last run's failure."""
        point = self.store.sync_point()
        upload = stored_upload(self.store, point.server_id if point else None)
        if point is None:
            return SyncStatus(upload=upload)
        records = self.store.datasets()
        state = SyncState.SUCCESS if point.last_failure is None else SyncState.FAILED
        return SyncStatus(
            upload=upload,
            status=state,
            error=point.last_failure,
            kind=_last_kind(point),
            datasets={key: _row(key, records[key], SyncState.SUCCESS) for key in DATASETS},
            next_delta_due=self._next_due(point, state, self.delta_interval()),
            **_point_fields(point),
        )


def stored_upload(store: DeviceStore, server_id: str | None) -> UploadStatus:
    """The upload status ``store``'s outbox holds for ``server_id`` (None after a wipe: every
    kept registration), as a restarted device shows it: Failed with the latest refusal while
    any refused registration is kept."""
    tally = store.outbox.tally(server_id)
    refused = store.outbox.refusals(server_id)
    upload = UploadStatus(
        pending=tally.pending,
        sent=tally.sent,
        failed=tally.failed,
        last_success=tally.last_upload,
        refused=refused,
    )
    if not refused:
        return upload
    return upload.model_copy(
        update={"status": SyncState.FAILED, "error": refusal_line(tally.failed, refused[0])}
    )


def _last_kind(point: SyncPoint) -> SyncKind:
    """The kind of the last run that wrote the store."""
    delta, full = point.last_delta_sync, point.last_full_sync
    return "delta" if delta is not None and (full is None or delta > full) else "full"


class _PointFields(TypedDict):
    cursor: int | None
    last_full_sync: datetime | None
    last_delta_sync: datetime | None


def _point_fields(point: SyncPoint | None) -> _PointFields:
    if point is None:
        return {"cursor": None, "last_full_sync": None, "last_delta_sync": None}
    return {
        "cursor": point.cursor,
        "last_full_sync": point.last_full_sync,
        "last_delta_sync": point.last_delta_sync,
    }


def _after_run(
    row: DatasetStatus, record: DatasetRecord | None, succeeded: bool, kept: bool
) -> DatasetStatus:
    """A dataset's row once a run ended. After a success: its stored figures (``record``,
    when re-read). After a failure: Failed beside the records the device still holds, or
    Success for a dataset whose changes were ``kept`` (a delta commits page by page)."""
    if succeeded:  # this run's changes, the records held now
        held = {"count": record.count, "last_updated": record.last_updated} if record else {}
        return row.model_copy(update={"status": SyncState.SUCCESS, **held})
    state = SyncState.SUCCESS if kept and row.status is SyncState.SUCCESS else SyncState.FAILED
    held = {"count": record.count, "last_updated": record.last_updated} if record else {}
    applied = {} if kept else {"changes": 0}  # a failed full sync applied nothing
    return row.model_copy(update={"status": state, **held, **applied})


def _row(key: str, record: DatasetRecord, state: SyncState) -> DatasetStatus:
    return DatasetStatus(
        key=key,
        label=DATASET_LABELS[key],
        status=state,
        count=record.count,
        changes=record.changes,
        failed=record.failed,
        last_updated=record.last_updated,
    )


def _no_portraits(rows: Rows) -> tuple[int, int]:
    """A snapshot's picture rows left unstaged (a full sync without portraits): none held,
    none to fetch."""
    return 0, 0


def _listed(hashes: list[str]) -> HashSource:
    """``hashes`` handed out in order, as many as asked each time."""
    start = 0

    async def take(count: int) -> list[str]:
        nonlocal start
        start += count
        return hashes[start - count : start]

    return take


@dataclass(frozen=True)
class _Kept:
    """An answer's portraits once checked: the ``rows`` (``sha256``, ``profile_id``) of those
    written to files, the ones asked for and not kept (hash -> whose: the profile id and the
    problem, or "not sent"), and the bytes of the largest kept (0 when none is)."""

    rows: list[tuple[str, str]]
    refused: dict[str, str]
    largest: int


def _refused_text(count: int, named: dict[str, str]) -> str:
    """The Profile picture row's error: how many portraits were refused, naming the first
    ``REFUSED_NAMED`` of this run's (profile id and problem)."""
    names = sorted(named.values())
    shown = ", ".join(names[:REFUSED_NAMED]) + (
        f" and {len(names) - REFUSED_NAMED} more" if len(names) > REFUSED_NAMED else ""
    )
    return f"{counted(count, 'portrait')} refused" + (f": {shown}" if names else "")
