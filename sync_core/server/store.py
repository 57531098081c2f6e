"""The server's DuckDB store: the six datasets, each row stamped with a change sequence.

Every imported or changed row carries ``_seq``, the next value of one server-wide change sequence
(docs/architecture.md, 'Server sequence, not device time'). Every change after the import also gets
a row in ``journal`` (seq, dataset, record id, ``set`` or ``delete``): the journal's deletes are the
tombstones, and a delta page is a short scan of it (``changes.py``). ``server_meta.last_seq`` is the
highest seq committed; writes are serialised (:meth:`ServerStore.write`) so sequence values commit
in order and a reader never sees seq N+1 before seq N. The store's identity (``server_id``) is made
with the store and returned at sign-in so devices bind their cursor to it. ``registrations`` holds
every device's uploaded registrations (an append-only log, not a dataset: no change sequence),
stamped with when and by whom each was received.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from sync_core.duck import CachedRead, Database, dataset_ddl, first_row, scalar_int
from sync_core.errors import ShipDataError
from sync_core.muster import REGISTRATION_DDL
from sync_core.protocol import DATASET_COLUMNS, DATASETS, id_column, wire_columns
from sync_core.server import key_slots

_META_DDL = (
    "CREATE TABLE IF NOT EXISTS server_meta ("
    "server_id VARCHAR, imported_at TIMESTAMP, horizon BIGINT NOT NULL DEFAULT 0, "
    "last_seq BIGINT NOT NULL DEFAULT 0)"
)
_JOURNAL_DDL = (
    "CREATE TABLE IF NOT EXISTS journal ("
    "_seq BIGINT NOT NULL, key VARCHAR NOT NULL, id VARCHAR NOT NULL, op VARCHAR NOT NULL, "
    "changed_at TIMESTAMP NOT NULL)"
)
# Portraits are fetched by content hash (see ServerStore.pictures).
_PICTURES_INDEX_DDL = "CREATE INDEX IF NOT EXISTS pictures_sha256 ON pictures (sha256)"
_REGISTRATIONS_DDL = REGISTRATION_DDL.format(
    extra=", received_at TIMESTAMP NOT NULL, uploaded_by VARCHAR NOT NULL"
)


@dataclass(frozen=True)
class Snapshot:
    """One consistent read: ``cursor`` and each dataset's rows with their wire columns."""

    cursor: int
    tables: dict[str, pa.Table]


@dataclass(frozen=True)
class ServerUser:
    """A mustering user as the server checks them at sign-in."""

    username: str
    display_name: str
    role: str
    password_hash: str
    key_slot: str | None


class ServerStore:
    """The server store at ``path``; :meth:`import_ship` fills a new one.

    Raises ``sync_core.errors.StoreInUse`` when another process holds the file.
    """

    def __init__(self, path: Path | str) -> None:
        self.db = Database(path, holder="another server process")
        self._write_lock = threading.Lock()
        self._feed = CachedRead(self._read_feed_bounds)
        with self.db.cursor() as cur:
            cur.execute(_META_DDL)
            cur.execute(key_slots.META_DDL)
            cur.execute(_REGISTRATIONS_DDL)
            row = first_row(cur, "SELECT server_id FROM server_meta")
            if row:  # a store imported before the index existed gets it now
                cur.execute(_PICTURES_INDEX_DDL)
        self.server_id: str | None = row[0] if row else None

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction; writes run one at a time so sequence values commit in order."""
        with self._write_lock:
            try:
                with self.db.transaction() as cur:
                    yield cur
            finally:
                self._feed.drop()

    @property
    def imported(self) -> bool:
        """True once an import has committed (the server listens only then)."""
        return self.server_id is not None

    def close(self) -> None:
        """Close the store cleanly (on SIGTERM, through the app's lifespan)."""
        self.db.close()

    def import_ship(self, data_dir: Path) -> dict[str, int]:
        """Import ``data_dir/<key>.parquet`` for the six datasets in one transaction.

        Stamps every row with the change sequence and creates the server id. Returns rows
        per dataset. Raises ShipDataError for a missing file or column, ValueError when the
        store was already imported.
        """
        if self.imported:
            raise ValueError(f"{self.db.path} already holds an import")
        for key in DATASETS:
            if not (data_dir / f"{key}.parquet").is_file():
                raise ShipDataError(f"{data_dir / f'{key}.parquet'} is missing")
        server_id = str(uuid.uuid4())
        with self.write() as cur:
            cur.execute("CREATE SEQUENCE change_seq START 1")
            cur.execute(_JOURNAL_DDL)
            counts = {key: _import_dataset(cur, key, data_dir / f"{key}.parquet") for key in DATASETS}
            cur.execute(_PICTURES_INDEX_DDL)
            now = datetime.now(UTC).replace(tzinfo=None)
            cur.execute(
                "INSERT INTO server_meta VALUES (?, ?, 0, 0, ?)",
                [server_id, now, key_slots.imported_ship_key(data_dir)],
            )
            union = " UNION ALL ".join(f'SELECT max(_seq) AS s FROM "{key}"' for key in DATASETS)
            cur.execute(f"UPDATE server_meta SET last_seq = (SELECT max(s) FROM ({union}))")
        self.server_id = server_id
        return counts

    def user(self, username: str) -> ServerUser | None:
        """The user ``username``, or None."""
        with self.db.cursor() as cur:
            row = first_row(
                cur,
                "SELECT username, display_name, role, password_hash, key_slot FROM users WHERE username = ?",
                [username],
            )
        return ServerUser(*row) if row else None

    def feed_bounds(self) -> tuple[int, int]:
        """``(horizon, last_seq)`` of the change feed: the oldest cursor still served and the
        highest change committed. Kept in memory between writes, so an empty delta poll
        costs no query."""
        return self._feed.get()

    def _read_feed_bounds(self) -> tuple[int, int]:
        with self.db.cursor() as cur:
            return first_row(cur, "SELECT horizon, last_seq FROM server_meta") or (0, 0)

    def latest(self) -> int:
        """The highest change sequence committed (see :func:`latest_seq`)."""
        with self.db.cursor() as cur:
            return latest_seq(cur)

    def snapshot(self) -> Snapshot:
        """Read every dataset (pictures without bytes) and the cursor in one transaction."""
        with self.db.transaction() as cur:
            tables = {key: _read_dataset(cur, key) for key in DATASETS}
            cursor = latest_seq(cur)
        return Snapshot(cursor=cursor, tables=tables)

    def pictures(self, hashes: list[str]) -> pa.Table:
        """Portraits whose ``sha256`` is in ``hashes``: columns sha256, profile_id, jpeg.

        The hashes go into the SQL as quoted literals so that DuckDB looks them up in the
        sha256 index; a join or a bound list scanned (and decompressed) every portrait:
        ~35 ms per 100 against ~5 here.
        """
        wanted = ", ".join("'" + sha256.replace("'", "''") + "'" for sha256 in hashes) or "NULL"
        with self.db.cursor() as cur:
            return cur.sql(
                f"SELECT sha256, profile_id, jpeg FROM pictures WHERE sha256 IN ({wanted})"
            ).to_arrow_table()

    def counts(self) -> dict[str, int]:
        """Records per dataset."""
        with self.db.cursor() as cur:
            return {key: scalar_int(cur, f'SELECT count(*) FROM "{key}"') for key in DATASETS}

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self.db.cursor() as cur:
                return first_row(cur, "SELECT 1") == (1,)
        except Exception:  # noqa: BLE001 - any failure means the DB is down
            return False


def latest_seq(cur: duckdb.DuckDBPyConnection) -> int:
    """The highest change sequence committed and visible to ``cur``'s transaction.

    Read from ``server_meta.last_seq``, which every write updates inside its own
    transaction, so it is as consistent as the rows it describes.
    """
    return scalar_int(cur, "SELECT last_seq FROM server_meta")


def _import_dataset(cur: duckdb.DuckDBPyConnection, key: str, path: Path) -> int:
    names = [name for name, _ in DATASET_COLUMNS[key]]
    found = {row[0] for row in cur.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
    missing = [name for name in names if name not in found]
    if missing:
        raise ShipDataError(f"{path} lacks columns {missing}")
    cur.execute(dataset_ddl(key, key, "_seq BIGINT NOT NULL"))
    select = ", ".join(f'"{name}"' for name in names)
    cur.execute(
        f"INSERT INTO \"{key}\" SELECT {select}, nextval('change_seq') FROM read_parquet(?) "
        f'ORDER BY "{id_column(key)}"',
        [str(path)],
    )
    return scalar_int(cur, f'SELECT count(*) FROM "{key}"')


def _read_dataset(cur: duckdb.DuckDBPyConnection, key: str) -> pa.Table:
    select = ", ".join(f'"{name}"' for name in wire_columns(key))
    return cur.sql(f'SELECT {select} FROM "{key}" ORDER BY "{id_column(key)}"').to_arrow_table()
