"""The device's local DuckDB store: the six datasets, the sync state and the cursor.

One process owns the file at a time (DuckDB's lock); a second opener gets
:class:`~sync_core.errors.StoreInUse`. Every method takes its own cursor, so methods may be
called from worker threads (``asyncio.to_thread``) without sharing a connection
(../shared/FIELD-NOTES.md, DuckDB). A full sync writes into ``<key>__staging`` tables and
:meth:`DeviceStore.swap_in` replaces the live tables and the cursor in one transaction
(DESIGN.md, sync invariants 2 and 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from sync_core.duck import Database, dataset_ddl
from sync_core.protocol import DATASETS

_STATE_DDL = (
    """CREATE TABLE IF NOT EXISTS sync_state (
        id INTEGER PRIMARY KEY, server_id VARCHAR, server_url VARCHAR, cursor BIGINT,
        last_full_sync TIMESTAMP, last_delta_sync TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS dataset_state (
        key VARCHAR PRIMARY KEY, changes BIGINT, failed BIGINT, last_updated TIMESTAMP)""",
)


@dataclass(frozen=True)
class SyncPoint:
    """Where the device stands: the server it synced with and that server's cursor.

    Times are aware UTC datetimes from the device clock, for display only.
    """

    server_id: str
    server_url: str
    cursor: int
    last_full_sync: datetime | None


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset's standing on the device: records held and what the last run did."""

    count: int
    changes: int
    failed: int
    last_updated: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class DeviceStore:
    """The device store at ``path`` (a DuckDB file, created if missing).

    Raises :class:`StoreInUse` when another process holds the file.
    """

    def __init__(self, path: Path | str) -> None:
        self.db = Database(path)
        self.path = self.db.path
        with self.db.cursor() as cur:
            for ddl in _STATE_DDL:
                cur.execute(ddl)
            for key in DATASETS:
                cur.execute(dataset_ddl(key, key))

    def close(self) -> None:
        """Close the store; later calls fail."""
        self.db.close()

    # -- reading ---------------------------------------------------------------------

    def sync_point(self) -> SyncPoint | None:
        """The last committed sync, or None before the first successful full sync."""
        with self.db.cursor() as cur:
            row = cur.execute(
                "SELECT server_id, server_url, cursor, last_full_sync FROM sync_state"
            ).fetchone()
        if row is None:
            return None
        return SyncPoint(row[0], row[1], row[2], _utc(row[3]))

    def has_synced_with(self, server_id: str) -> bool:
        """True when the device's cursor is bound to ``server_id`` (DESIGN.md, stores)."""
        point = self.sync_point()
        return point is not None and point.server_id == server_id

    def datasets(self) -> dict[str, DatasetRecord]:
        """Each dataset's count and last-run figures, keyed as :data:`DATASETS`."""
        with self.db.cursor() as cur:
            counts = {
                key: cur.execute(f'SELECT count(*) FROM "{key}"').fetchone()[0]  # type: ignore[index]
                for key in DATASETS
            }
            rows = cur.execute(
                "SELECT key, changes, failed, last_updated FROM dataset_state"
            ).fetchall()
        state = {key: (changes, failed, _utc(at)) for key, changes, failed, at in rows}
        return {
            key: DatasetRecord(counts[key], *state.get(key, (0, 0, None))) for key in DATASETS
        }

    def user(self, username: str) -> tuple[str, str, str] | None:
        """``(password_hash, display_name, role)`` of a synced user, or None."""
        with self.db.cursor() as cur:
            return cur.execute(
                "SELECT password_hash, display_name, role FROM users WHERE username = ?",
                [username],
            ).fetchone()

    # -- full sync -------------------------------------------------------------------

    def begin_staging(self) -> None:
        """Create empty staging tables (dropping any a crash left behind)."""
        with self.db.cursor() as cur:
            for key in DATASETS:
                cur.execute(f'DROP TABLE IF EXISTS "{key}__staging"')
                cur.execute(dataset_ddl(f"{key}__staging", key))
            cur.execute("DROP TABLE IF EXISTS pictures__index")
            cur.execute("CREATE TABLE pictures__index (sha256 VARCHAR, profile_id VARCHAR)")

    def stage(self, key: str, rows: pa.Table) -> int:
        """Append Arrow ``rows`` to dataset ``key``'s staging table; return rows added.

        For ``pictures`` the rows carry their ``jpeg`` bytes. Columns are matched by name;
        a missing or unconvertible column raises ``duckdb.Error``.
        """
        return self._insert(f"{key}__staging", rows)

    def stage_picture_index(self, rows: pa.Table) -> int:
        """Stage a snapshot's picture index (``sha256``, ``profile_id``; no bytes)."""
        return self._insert("pictures__index", rows)

    def _insert(self, table: str, rows: pa.Table) -> int:
        with self.db.cursor() as cur:
            cur.register("incoming", rows)
            cur.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming')
            cur.unregister("incoming")
        return rows.num_rows

    def staged_picture_hashes(self) -> list[str]:
        """Distinct portrait hashes of the staged snapshot, in a stable order."""
        with self.db.cursor() as cur:
            rows = cur.execute("SELECT DISTINCT sha256 FROM pictures__index ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def drop_staging(self) -> None:
        """Throw away a failed full sync's staging tables; the live data is untouched."""
        with self.db.cursor() as cur:
            for key in DATASETS:
                cur.execute(f'DROP TABLE IF EXISTS "{key}__staging"')
            cur.execute("DROP TABLE IF EXISTS pictures__index")

    def swap_in(
        self, point: SyncPoint, failed: dict[str, int], at: datetime
    ) -> dict[str, DatasetRecord]:
        """Replace every live dataset by its staging table and store ``point``, atomically.

        One transaction: a crash before COMMIT leaves the previous data and cursor
        (invariant 4). ``failed`` counts refused items per dataset; ``at`` stamps the
        datasets' ``last_updated``. Returns the new :meth:`datasets`.
        """
        with self.db.transaction() as cur:
            for key in DATASETS:
                cur.execute(f'DROP TABLE "{key}"')
                cur.execute(f'ALTER TABLE "{key}__staging" RENAME TO "{key}"')
            cur.execute("DROP TABLE pictures__index")
            cur.execute("DELETE FROM sync_state")
            cur.execute(
                "INSERT INTO sync_state VALUES (1, ?, ?, ?, ?, NULL)",
                [point.server_id, point.server_url, point.cursor, _naive(at)],
            )
            cur.execute("DELETE FROM dataset_state")
            for key in DATASETS:
                cur.execute(
                    f'INSERT INTO dataset_state SELECT ?, count(*), ?, ? FROM "{key}"',
                    [key, failed.get(key, 0), _naive(at)],
                )
        return self.datasets()

