"""The device's local DuckDB store: the six datasets, the sync state and the cursor.

One process owns the file at a time (DuckDB's lock); a second opener gets
:class:`~sync_core.errors.StoreInUse`. Every method takes its own cursor, so methods may be called
from worker threads (``asyncio.to_thread``) without sharing a connection (a DuckDB connection is not
shareable across threads). A full sync writes into ``<key>__staging`` tables and
:meth:`DeviceStore.swap_in` replaces the live tables and the cursor in one transaction
(docs/architecture.md, 'Cursor and rows commit together', 'A full sync swaps in whole'). It also
keeps when the device was last used, the failed sign-ins of each username
(:mod:`sync_core.device.sign_in_rules`), and runs the retention wipe's transaction
(:mod:`sync_core.device.retention`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import duckdb

from sync_core.device import shredding
from sync_core.device.arrow_rows import ArrowRows
from sync_core.device.delta_page import DeltaPage
from sync_core.device.outbox import Outbox
from sync_core.device.pictures import PortraitFiles
from sync_core.device.sealing import SEALED_COLUMN, SEALED_FIELDS, Sealer, device_columns, sealed_fields
from sync_core.duck import (
    CachedRead,
    Database,
    aware_utc,
    dataset_ddl,
    first_row,
    naive_utc,
    scalar,
    scalar_int,
)
from sync_core.errors import StoreLocked, StoreUnusable
from sync_core.files import shared_directory
from sync_core.migrations import Migration, NewerSchema, migrate, statements
from sync_core.muster import whole_number
from sync_core.protocol import DATASETS, id_column

# A handheld's budget: DuckDB's buffer pool capped. It holds a staged dataset until it is
# checkpointed (DuckDB counted 3.3 MB for 10,000 profiles, sealed, and 14.7 MB for 50,000).
# 16 MB was tried: a delta of 500 new portraits on the icon preset failed there ("failed to
# pin block"), so the cap stays at 64 MB.
DEVICE_SETTINGS: dict[str, str | int] = {"memory_limit": "64MB"}
# touch() writes at most once a minute (an UPDATE and its commit took ~3.4 ms here), so the
# app may call it on every key; a retention window counts in days.
TOUCH_RESOLUTION = timedelta(minutes=1)
# Rows a full sync stages per statement, and the rows of a row group in the store: its memory
# then grows by a few MB from a ship of 10,000 profiles to one of 50,000 (see Database).
STAGE_BATCH_ROWS = 8192
# Rows read per batch where a read walks every portrait's hash.
STREAM_ROWS = 4096
# Rows as the client hands them over: record batches read as they arrive (an ArrowStream).
Rows: TypeAlias = Iterable[ArrowRows]
# Parts of a dataset's rows (one record batch each) with their sealed blobs (None for a
# dataset without personal fields), ready to insert.
Sealed: TypeAlias = list[tuple[ArrowRows, list[bytes] | None]]
T = TypeVar("T")
log = logging.getLogger(__name__)

# Step 1 of _MIGRATIONS below, frozen: a later change of schema is a new step there (a
# statement added here would never reach a store already at version 1).
_STATE_DDL = (
    """CREATE TABLE IF NOT EXISTS sync_state (
        id INTEGER PRIMARY KEY, server_id VARCHAR, server_url VARCHAR, cursor BIGINT,
        last_full_sync TIMESTAMP, last_delta_sync TIMESTAMP)""",
    "ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS last_failure VARCHAR",
    """CREATE TABLE IF NOT EXISTS dataset_state (
        key VARCHAR PRIMARY KEY, changes BIGINT, failed BIGINT, last_updated TIMESTAMP)""",
    "CREATE TABLE IF NOT EXISTS device_meta (device_id VARCHAR NOT NULL)",
    "ALTER TABLE device_meta ADD COLUMN IF NOT EXISTS last_used TIMESTAMP",
    """CREATE TABLE IF NOT EXISTS sign_in_failures (
        username VARCHAR PRIMARY KEY, failures INTEGER NOT NULL, locked_until TIMESTAMP)""",
)
# The device store's schema steps (sync_core.migrations): append, never edit.
_MIGRATIONS = (
    Migration(
        1,
        "sync state, dataset state, device meta, sign-in failures, the six datasets",
        statements(*_STATE_DDL, *(dataset_ddl(key, key, columns=device_columns(key)) for key in DATASETS)),
    ),
)


@dataclass(frozen=True)
class SyncPoint:
    """Where the device stands: the server it synced with and that server's cursor.

    Times are aware UTC datetimes from the device clock, for display only.
    ``last_failure`` is the reason the last run failed, None when it succeeded: a restarted
    app shows it (and Retry) rather than the success before it.
    """

    server_id: str
    server_url: str
    cursor: int
    last_full_sync: datetime | None
    last_delta_sync: datetime | None = None
    last_failure: str | None = None

    @property
    def last_success(self) -> datetime | None:
        """Completion of the last successful sync, full or delta."""
        times = [t for t in (self.last_full_sync, self.last_delta_sync) if t is not None]
        return max(times, default=None)


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset's standing on the device: records held and what the last run did."""

    count: int
    changes: int
    failed: int
    last_updated: datetime | None


class DeviceStore:
    """The device store at ``path`` (a DuckDB file, created if missing).

    ``device_id`` names this device in its registrations (made with the store);
    ``outbox`` holds them; ``portraits`` holds the portrait bytes, in files beside the store
    (:mod:`~sync_core.device.pictures`). A store made by an earlier release is migrated as it
    opens (``_MIGRATIONS``). Raises :class:`StoreInUse` when another process holds the file,
    StoreUnusable when a newer release made it.
    """

    def __init__(self, path: Path | str) -> None:
        shredding.discard(shredding.fresh_path(Path(path)))  # a wipe a crash interrupted
        self.db = Database(path, settings=DEVICE_SETTINGS, row_group_rows=STAGE_BATCH_ROWS)
        if shared_directory(Path(path).absolute().parent):
            log.warning("the device store's directory is open to other users: make it 0700")
        self.path = self.db.path
        try:
            with self.db.transaction() as cur:
                migrate(cur, _MIGRATIONS)
        except NewerSchema as exc:
            self.db.close()
            raise StoreUnusable(self.path, f"made by a newer Muster ({exc})") from exc
        with self.db.cursor() as cur:
            in_clear = scalar_int(
                cur,
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'reservations' AND column_name = 'first_name'",
            )
            self.device_id = _device_id(cur)
        self.outbox = Outbox(self.db)
        self.portraits = PortraitFiles(Path(f"{self.path}.portraits"), lambda: self.sealer)
        self._views: dict[Callable[[DeviceStore], Any], CachedRead[Any]] = {}
        self._views_lock = threading.Lock()
        self._point = self.view(DeviceStore._read_point)
        self._touched: datetime | None = None  # the last_used this process wrote
        self._sealer: Sealer | None = None  # the data key, in memory only (docs/security.md)
        self.drop_staging()  # a full sync killed mid-way left it; it never outlives a process
        if in_clear:
            log.warning("the device store holds personal data in clear (an older version): wiping it")
            self.wipe()
        elif self.sync_point() is None:  # nothing synced (or wiped): no portrait may stay, not
            self.portraits.clear()  # even those of a wipe killed before it removed its files

    def close(self) -> None:
        """Close the store; later calls fail."""
        self.db.close()

    # -- the data key ------------------------------------------------------------------

    def unlock(self, data_key: bytes) -> None:
        """Hold the ship's ``data_key`` (opened from a key slot at sign-in) in memory: the
        personal data is sealed with it when written and opened with it when read."""
        self._sealer = Sealer(data_key)

    @property
    def sealer(self) -> Sealer:
        """The data key's sealer. Raises StoreLocked before any :meth:`unlock`."""
        if self._sealer is None:
            raise StoreLocked()
        return self._sealer

    # -- reading ---------------------------------------------------------------------

    def sync_point(self) -> SyncPoint | None:
        """The last committed sync, or None before the first successful full sync.

        Kept in memory between writes (this process owns the file), so an empty delta poll
        reads nothing from the store.
        """
        return self._point.get()

    def _read_point(self) -> SyncPoint | None:
        with self.db.cursor() as cur:
            row = first_row(
                cur,
                "SELECT server_id, server_url, cursor, last_full_sync, last_delta_sync, last_failure "
                "FROM sync_state",
            )
        if row is None:
            return None
        return SyncPoint(row[0], row[1], row[2], aware_utc(row[3]), aware_utc(row[4]), row[5])

    def view(self, make: Callable[[DeviceStore], T]) -> CachedRead[T]:
        """This store's one cached ``make(self)`` for ``make`` (a class or a function): made
        at the first ``get()``, kept in memory, and made again after the next write of the
        datasets or the sync point (a delta page, a full sync's swap, a wipe) ends. For what
        is derived from the synced data: the sync point, the profiles and standings held in
        memory (:mod:`~sync_core.device.people`, :mod:`~sync_core.device.standings`)."""
        with self._views_lock:
            if make not in self._views:
                self._views[make] = CachedRead(lambda: make(self))
            return self._views[make]

    @contextmanager
    def _data_write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction that writes the datasets or ``sync_state``; every :meth:`view` is
        dropped after it."""
        try:
            with self.db.transaction() as cur:
                yield cur
        finally:
            self._drop_views()

    def _drop_views(self) -> None:
        with self._views_lock:
            views = list(self._views.values())
        for view in views:
            view.drop()

    def has_synced_with(self, server_id: str) -> bool:
        """True when the device's cursor is bound to ``server_id`` (docs/architecture.md, 'Stores
        and processes')."""
        point = self.sync_point()
        return point is not None and point.server_id == server_id

    def datasets(self, keys: Iterable[str] = DATASETS) -> dict[str, DatasetRecord]:
        """The count and last-run figures of each dataset in ``keys`` (default: all six)."""
        keys = list(keys)
        with self.db.cursor() as cur:
            counts = {key: scalar_int(cur, f'SELECT count(*) FROM "{key}"') for key in keys}
            rows = cur.execute("SELECT key, changes, failed, last_updated FROM dataset_state").fetchall()
        # All six rows and a filter here: "WHERE key IN (SELECT unnest($1))" took 4.4 ms, this 0.7.
        state = {key: (changes, failed, aware_utc(at)) for key, changes, failed, at in rows}
        return {key: DatasetRecord(counts[key], *state.get(key, (0, 0, None))) for key in keys}

    def user(self, username: str) -> tuple[str | None, str, bytes] | None:
        """``(key_slot, role, sealed)`` of a synced user, or None; ``sealed`` holds the display
        name and password verifier (:meth:`Sealer.open_fields`)."""
        with self.db.cursor() as cur:
            return first_row(cur, "SELECT key_slot, role, sealed FROM users WHERE username = ?", [username])

    def parameter(self, name: str) -> str | None:
        """The value of general parameter ``name``, or None when it is not synced."""
        with self.db.cursor() as cur:
            row = first_row(cur, "SELECT value FROM parameters WHERE name = ?", [name])
        return row[0] if row else None

    def whole_parameter(self, name: str, default: int) -> int:
        """General parameter ``name`` as a whole number (``sync_core.muster.whole_number``)."""
        return whole_number(name, self.parameter(name), default)

    # -- last use and sign-in failures ---------------------------------------------------

    def touch(self, at: datetime) -> None:
        """Record that the device is in use at ``at`` (aware, device clock): a sign-in or a
        crew member's activity. Cheap to call often: a time within ``TOUCH_RESOLUTION`` after
        the last one this process wrote is not written."""
        last = self._touched
        if last is not None and timedelta(0) <= at - last < TOUCH_RESOLUTION:
            return
        with self.db.cursor() as cur:
            cur.execute("UPDATE device_meta SET last_used = ?", [naive_utc(at)])
        self._touched = at

    def last_used(self) -> datetime | None:
        """When the device was last used (aware UTC, to ``TOUCH_RESOLUTION``), or None: never,
        or not since a retention wipe."""
        with self.db.cursor() as cur:
            row = first_row(cur, "SELECT last_used FROM device_meta")
        return aware_utc(row[0]) if row else None

    def locked_until(self, username: str) -> datetime | None:
        """The end (aware UTC) of ``username``'s last sign-in lockout, or None; it may be past."""
        with self.db.cursor() as cur:
            row = first_row(cur, "SELECT locked_until FROM sign_in_failures WHERE username = ?", [username])
        return aware_utc(row[0]) if row else None

    def count_failed_sign_in(self, username: str, limit: int, lock_until: datetime) -> bool:
        """Count one more failed sign-in of ``username`` in a row; the ``limit``-th locks the
        username until ``lock_until`` and restarts the count. Returns True when this one locked."""
        with self.db.transaction() as cur:
            (failures,) = cur.execute(
                "INSERT INTO sign_in_failures VALUES (?, 1, NULL) ON CONFLICT (username) "
                "DO UPDATE SET failures = failures + 1 RETURNING failures",
                [username],
            ).fetchall()[0]
            if failures < limit:
                return False
            cur.execute(
                "UPDATE sign_in_failures SET failures = 0, locked_until = ? WHERE username = ?",
                [naive_utc(lock_until), username],
            )
        return True

    def clear_failed_sign_ins(self, username: str) -> None:
        """Forget ``username``'s failed sign-ins and lockout (a successful sign-in)."""
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])

    # -- delta sync ------------------------------------------------------------------

    def apply_page(self, page: DeltaPage, first: bool, at: datetime) -> dict[str, int]:
        """Apply one delta page and its cursor in one transaction (docs/architecture.md, 'Cursor and
        rows commit together'); return, per dataset it changed, the records gained (negative: lost).

        Per dataset: deleted and upserted ids are removed, then upserted rows inserted;
        picture rows arrive without bytes, so only their deletes apply here (the bytes come
        through :meth:`add_pictures`; the server deletes a replaced or orphaned portrait,
        and :meth:`prune_pictures` is the safety net). ``first`` starts the run's change
        counts afresh; ``at`` stamps ``last_updated`` and the delta time. An empty page (a
        poll that found nothing) writes only that time and the counts, so the views of the
        synced data stay. Raises ``duckdb.Error`` (nothing applied) for rows the store cannot
        take.
        """
        changes = page.changes
        point = self.sync_point()
        upserts = {key: self.seal(key, rows) for key, rows in page.upserts.items() if key != "pictures"}
        with self._data_write() if changes else self.db.transaction() as cur:
            gained = {
                key: _apply_dataset(cur, key, upserts.get(key), page.deletes.get(key, [])) for key in changes
            }
            cur.execute(
                "UPDATE sync_state SET cursor = ?, last_delta_sync = ?, last_failure = NULL",
                [page.cursor, naive_utc(at)],
            )
            if changes or first:
                _count_changes(cur, changes, first, at)
        gone = set(page.deletes.get("pictures", []))
        if gone:  # their rows are deleted: their bytes go too (a re-sent one is fetched again)
            self.portraits.remove(gone)
        if point is not None:  # known without reading it back
            self._point.put(
                replace(
                    point, cursor=page.cursor, last_delta_sync=aware_utc(naive_utc(at)), last_failure=None
                )
            )
        return gained

    def note_failure(self, reason: str) -> None:
        """Keep ``reason`` as why the last run failed, until a page or a full sync commits;
        nothing before the first sync (there is no sync point to show it with)."""
        with self.db.cursor() as cur:
            cur.execute("UPDATE sync_state SET last_failure = ?", [reason])
        self._point.drop()

    def portrait(self, sha256: str) -> bytes | None:
        """The JPEG of portrait ``sha256``, or None when the device does not hold it (a
        damaged file counts as not held: see :meth:`PortraitFiles.read`)."""
        return self.portraits.read(sha256)

    def missing_pictures(self) -> list[str]:
        """Portrait hashes that reservations name and the device lacks (no row, or a row
        whose file is gone), in hash order. Both lists are walked side by side, 4,096 hashes
        at a time (see :func:`_hashes`)."""
        missing: list[str] = []
        with self.db.cursor() as cur:
            held = _hashes(cur, "pictures")
            row = next(held, None)
            for sha256 in _hashes(cur, "reservations", column="picture_sha256"):
                while row is not None and row < sha256:
                    row = next(held, None)
                if row != sha256 or not self.portraits.holds(sha256):
                    missing.append(sha256)
        return missing

    def prune_pictures(self) -> int:
        """Remove portraits no reservation names any longer, and portrait files no picture
        row names (a failed full sync's); returns how many rows went."""
        with self.db.cursor() as cur:
            removed = _affected(
                cur.execute(
                    "DELETE FROM pictures p WHERE NOT EXISTS "
                    "(SELECT 1 FROM reservations r WHERE r.picture_sha256 = p.sha256)"
                )
            )
        self._prune_portrait_files()
        return removed

    def _prune_portrait_files(self) -> None:
        """Delete the portrait files no row of ``pictures`` names; a failure is logged (the
        next prune tries again)."""
        try:
            with self.db.cursor() as cur:
                removed = self.portraits.keep_only(_hashes(cur, "pictures"))
        except OSError as exc:
            log.warning("could not remove unused portrait files: %s", exc)
            return
        if removed:
            log.info("removed %d portrait file(s) no profile names", removed)

    def keep_portrait(self, sha256: str, jpeg: bytes) -> None:
        """Write the bytes of a checked portrait to its file; nothing names it until a row
        of ``pictures`` does. Raises OSError."""
        self.portraits.write(sha256, jpeg)

    def add_pictures(self, rows: list[tuple[str, str]], failed: int, changes: int, at: datetime) -> int:
        """Add the rows (``sha256``, ``profile_id``) of fetched portraits whose files are
        written (:meth:`keep_portrait`); count ``failed`` refusals and ``changes`` more
        changes of this run; return the portraits gained (a portrait fetched again replaces
        itself)."""
        with self.db.transaction() as cur:
            hashes = [sha256 for sha256, _ in rows]
            # A filter on the list: "sha256 IN (SELECT unnest($1))", a join, took the peak of
            # a delta of 500 new portraits (icon preset) ~10 MB higher.
            replaced = _affected(
                cur.execute("DELETE FROM pictures WHERE list_contains($1, sha256)", [hashes])
            )
            cur.execute(
                "INSERT INTO pictures SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), NULL",
                [hashes, [profile_id for _, profile_id in rows]],
            )
            cur.execute(
                "UPDATE dataset_state SET changes = changes + ?, failed = failed + ?, last_updated = ? "
                "WHERE key = 'pictures'",
                [changes, failed, naive_utc(at)],
            )
        return len(rows) - replaced

    # -- full sync -------------------------------------------------------------------

    def begin_staging(self) -> None:
        """Create empty staging tables (dropping any a crash left behind)."""
        with self.db.cursor() as cur:
            for key in DATASETS:
                cur.execute(f'DROP TABLE IF EXISTS "{key}__staging"')
                cur.execute(_dataset_ddl(f"{key}__staging", key))

    def stage(self, key: str, rows: Rows) -> int:
        """Append ``rows`` (record batches, read as they come) to dataset ``key``'s staging
        table, at most ``STAGE_BATCH_ROWS`` per statement (a statement's memory stays flat
        with the ship); return rows added.

        Columns come in the table's order (the client checks them); a missing or
        unconvertible column raises ``duckdb.Error``, a batch that does not decode
        MalformedResponse. Personal fields are sealed first (StoreLocked before
        :meth:`unlock`). Pictures go through :meth:`stage_picture_index`.
        """
        added = 0
        with self.db.cursor() as cur:
            for batch in rows:
                for part, sealed in self.seal(key, batch):
                    insert_rows(cur, f"{_dataset(key)}__staging", key, part, sealed)
                    added += part.num_rows
        return added

    def seal(self, key: str, rows: ArrowRows) -> Sealed:
        """``rows`` of dataset ``key`` in parts of at most ``STAGE_BATCH_ROWS``, each with the
        sealed blobs of its personal fields (None for a dataset without)."""
        personal = key in SEALED_FIELDS
        return [
            (part, sealed_fields(self.sealer, key, part) if personal else None)
            for part in rows.slices(STAGE_BATCH_ROWS)
        ]

    def stage_picture_index(self, rows: Rows) -> tuple[int, int]:
        """Stage a snapshot's picture rows (``sha256``, ``profile_id``; the bytes are files,
        see :meth:`stage`); return the rows added and how many portraits they name whose
        bytes the device does not hold yet (:meth:`staged_missing_pictures` hands them out: a held
        portrait is kept, content-addressed, same hash, same bytes)."""
        added = 0
        with self.db.cursor() as cur:
            for batch in rows:
                batch.relation(cur).project('"sha256", "profile_id", NULL::BLOB').insert_into(
                    "pictures__staging"
                )
                added += batch.num_rows
            missing = sum(not self.portraits.holds(sha256) for sha256 in _hashes(cur, "pictures__staging"))
        return added, missing

    def staged_missing_pictures(self, after: str, count: int) -> list[str]:
        """Up to ``count`` hashes of staged picture rows whose bytes the device does not
        hold, in hash order after ``after``; empty at the end."""
        with self.db.cursor() as cur:
            staged = _hashes(cur, "pictures__staging", after)
            return list(islice((sha256 for sha256 in staged if not self.portraits.holds(sha256)), count))

    def unstage_pictures(self, hashes: list[str]) -> None:
        """Drop the staged picture rows of ``hashes`` (portraits refused: not held)."""
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM pictures__staging WHERE list_contains($1, sha256)", [hashes])

    def drop_staging(self) -> None:
        """Throw away a failed full sync's staging tables; the live data is untouched."""
        with self.db.cursor() as cur:
            _drop_staging(cur)

    def swap_in(
        self,
        point: SyncPoint,
        failed: dict[str, int],
        at: datetime,
        changes: dict[str, int] | None = None,
    ) -> dict[str, DatasetRecord]:
        """Replace every live dataset by its staging table and store ``point``, atomically.

        One transaction: a crash before COMMIT leaves the previous data and cursor
        (docs/architecture.md, 'A full sync swaps in whole'). ``failed`` counts refused items per
        dataset, ``changes`` the items the run fetched (a dataset it lacks: all its records);
        ``at`` stamps the datasets' ``last_updated``. Returns the new :meth:`datasets`.

        Then a checkpoint writes the new data into the file: otherwise the next commit that
        crossed DuckDB's WAL threshold (a card scan's, say) paid for it, 130-360 ms here.
        """
        with self._data_write() as cur:
            for key in DATASETS:
                cur.execute(f'DROP TABLE "{key}"')
                cur.execute(f'ALTER TABLE "{key}__staging" RENAME TO "{key}"')
            last_delta = scalar(
                cur, "SELECT last_delta_sync FROM sync_state WHERE server_id = ?", [point.server_id]
            )
            cur.execute("DELETE FROM sync_state")
            cur.execute(
                "INSERT INTO sync_state (id, server_id, server_url, cursor, last_full_sync, last_delta_sync) "
                "VALUES (1, ?, ?, ?, ?, ?)",
                [point.server_id, point.server_url, point.cursor, naive_utc(at), last_delta],
            )
            cur.execute("DELETE FROM dataset_state")
            for key in DATASETS:
                cur.execute(
                    f'INSERT INTO dataset_state SELECT ?, coalesce(?, count(*)), ?, ? FROM "{key}"',
                    [key, (changes or {}).get(key), failed.get(key, 0), naive_utc(at)],
                )
        self._checkpoint("full sync")
        self._prune_portrait_files()  # the previous snapshot's portraits the new one lacks
        return self.datasets()

    # -- retention wipe --------------------------------------------------------------

    def wipe(self) -> tuple[int, int]:
        """Clear the device's data by crypto-shredding (docs/security.md, 'The retention wipe'):
        the data key is forgotten; the unsynced registrations (pending or refused, bound to
        their user and server: docs/architecture.md, 'Nothing unsynced is lost silently') and
        the device id are written into a new store file, which replaces this one; the old
        file, its WAL, DuckDB's temporary files and the rotated logs are overwritten and
        removed (:mod:`~sync_core.device.shredding`). Registrations already sent go, with the
        datasets, key slots, sync point, failed sign-ins and last use. Returns ``(kept,
        removed)`` registrations.

        Cursors asked for meanwhile wait. A failure before the new file is in place (raised:
        ``duckdb.Error``, OSError) leaves the old store whole and open.
        """
        path = Path(self.path)
        fresh = shredding.fresh_path(path)
        counts: list[int] = []

        def keep_and_replace() -> None:
            shredding.discard(fresh)
            try:
                counts.extend(_write_kept(path, fresh, self.device_id))
                shredding.replace_store(path, fresh)
            except BaseException:
                shredding.discard(fresh)  # gone already once it replaced the old store
                raise

        try:
            self.db.reopen(keep_and_replace)
        finally:
            self._sealer = None
            self._touched = None
            self._drop_views()
        self.portraits.clear()
        kept, removed = counts
        return kept, removed

    def _checkpoint(self, after: str) -> None:
        """Write what the WAL holds into the file; a failure is logged (``after`` names what
        committed before): DuckDB checkpoints again later and at close."""
        try:
            with self.db.cursor() as cur:
                cur.execute("CHECKPOINT")
        except duckdb.Error as exc:
            log.warning("checkpoint after the %s failed: %s", after, exc)


def _write_kept(path: Path, fresh: Path, device_id: str) -> tuple[int, int]:
    """Create the store ``fresh`` holding only ``device_id`` and the unsynced registrations of
    the closed store at ``path``; returns ``(kept, removed)`` registrations."""
    store = DeviceStore(fresh)
    try:
        with store.db.cursor() as cur:
            cur.execute("UPDATE device_meta SET device_id = ?", [device_id])
            cur.execute("ATTACH ? AS old (READ_ONLY)", [str(path)])
            try:
                unsynced = "SELECT * FROM old.registrations WHERE upload_state <> 'sent'"
                kept = _affected(cur.execute(f"INSERT INTO registrations {unsynced}"))
                removed = scalar_int(cur, "SELECT count(*) FROM old.registrations") - kept
            finally:
                cur.execute("DETACH old")
    finally:
        store.close()
    return kept, removed


def _device_id(cur: duckdb.DuckDBPyConnection) -> str:
    """This store's device id, made on first open (a UUID)."""
    found = scalar(cur, "SELECT device_id FROM device_meta")
    if found is None:
        found = str(uuid.uuid4())
        cur.execute("INSERT INTO device_meta (device_id) VALUES (?)", [found])
    return str(found)


def _dataset_ddl(table: str, key: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` with dataset ``key``'s device columns
    (personal fields sealed: :func:`~sync_core.device.sealing.device_columns`)."""
    return dataset_ddl(table, key, columns=device_columns(key))


def _drop_staging(cur: duckdb.DuckDBPyConnection) -> None:
    for key in DATASETS:
        cur.execute(f'DROP TABLE IF EXISTS "{key}__staging"')


def _dataset(key: str) -> str:
    """``key``, checked to be one of the six datasets (it is then safe inside SQL text)."""
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {key!r}")
    return key


def _count_changes(
    cur: duckdb.DuckDBPyConnection, changes: dict[str, int], first: bool, at: datetime
) -> None:
    """Add a page's ``changes`` per dataset to the run's counts (``first``: start them afresh)
    and stamp those datasets' ``last_updated`` with ``at``: one UPDATE, about half the time
    of one per dataset here."""
    added = " ".join(f"WHEN '{_dataset(key)}' THEN {int(count)}" for key, count in changes.items())
    increment = f"CASE key {added} ELSE 0 END" if changes else "0"
    changed = ", ".join(f"'{key}'" for key in changes) or "NULL"
    before = ("0", "0") if first else ("changes", "failed")
    cur.execute(
        f"UPDATE dataset_state SET changes = {before[0]} + {increment}, "
        f"failed = {before[1]}, last_updated = CASE WHEN key IN ({changed}) THEN ? ELSE last_updated END",
        [naive_utc(at)],
    )


def _apply_dataset(
    cur: duckdb.DuckDBPyConnection, key: str, upserts: Sealed | None, deletes: list[str]
) -> int:
    """Delete ``deletes`` and replace ``upserts`` in dataset ``key``; the records gained (the
    row counts DuckDB answers a DELETE and an INSERT with: no extra statement)."""
    ident = id_column(key)
    if key == "pictures":
        upserts = None
    ids = deletes + [rid for part, _ in upserts or [] for rid in part.values(ident)]
    gained = -_affected(cur.execute(f'DELETE FROM "{key}" WHERE "{ident}" IN (SELECT unnest($1))', [ids]))
    for part, sealed in upserts or []:
        insert_rows(cur, key, key, part, sealed)
        gained += part.num_rows
    return gained


def insert_rows(
    cur: duckdb.DuckDBPyConnection, table: str, key: str, part: ArrowRows, sealed: list[bytes] | None
) -> None:
    """Insert ``part`` of dataset ``key`` (one record batch, wire columns in ``table``'s
    order, as the client checked) into ``table``. When ``sealed`` is given, its blobs take the
    place of the personal fields, row by row: DuckDB never reads those."""
    if sealed is None:
        part.relation(cur).insert_into(f'"{table}"')
        return
    clear = tuple(name for name, _ in device_columns(key)[:-1])
    part.project(clear).with_blobs(SEALED_COLUMN, sealed).relation(cur).insert_into(f'"{table}"')


def _hashes(
    cur: duckdb.DuckDBPyConnection, table: str, after: str = "", column: str = "sha256"
) -> Iterator[str]:
    """The distinct portrait hashes in ``column`` of ``table`` after ``after``, in ascending
    order, read ``STREAM_ROWS`` at a time: each read keeps only its own rows in order (a top
    N). Sorting, or making distinct, 50,000 hashes at once raised a full sync's peak by
    ~8 MB here. Each read is whole before the next, so two walks may share ``cur``."""
    while hashes := cur.execute(
        f'SELECT "{column}" FROM "{table}" WHERE "{column}" > ? ORDER BY 1 LIMIT ?', [after, STREAM_ROWS]
    ).fetchall():
        for (sha256,) in hashes:
            if sha256 != after:  # a hash two rows name comes twice in a row
                yield sha256
                after = sha256


def _affected(result: duckdb.DuckDBPyConnection) -> int:
    """The rows a DELETE or INSERT touched (DuckDB answers with one row holding the count)."""
    return int(result.fetchall()[0][0])
