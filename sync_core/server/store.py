"""The server store: the six datasets, each row stamped with a change sequence, on DuckDB
(an embedded file, the default) or on PostgreSQL (the ship's DB server).

Every imported or changed row carries ``_seq``, the next value of one server-wide change
sequence (docs/architecture.md, 'Server sequence, not device time'). Every change after the import also gets a
row in ``journal`` (seq, dataset, record id, ``set`` or ``delete``): the journal's deletes are
the tombstones, and a delta page is a short scan of it (``changes.py``).
``server_meta.last_seq`` is the highest seq committed; writes are serialised
(:meth:`ServerStore.write`) so sequence values commit in order and a reader never sees seq
N+1 before seq N. The store's identity (``server_id``) is made with the store and returned
at sign-in so devices bind their cursor to it. ``registrations`` holds every device's
uploaded registrations (an append-only log, not a dataset: no change sequence), stamped
with when and by whom each was received. Portrait bytes are not in the store: they are
content-addressed files in the store's portraits directory (:mod:`sync_core.server.portraits`).

:class:`ServerStore` holds everything both engines share (the SQL is written once, in the
dialect both accept, with ``$1`` parameters); :class:`~sync_core.server.duck_store.DuckServerStore`
and :class:`~sync_core.server.pg_store.PgServerStore` supply connections, transactions and
the moves of Arrow data in and out. :func:`open_server_store` picks one by the ``--db`` value.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from sync_core.duck import CachedRead, dataset_ddl, first_row, scalar_int
from sync_core.errors import ShipDataError, StoreUnusable
from sync_core.migrations import NewerSchema, migrate
from sync_core.protocol import DATASET_COLUMNS, DATASETS, id_column, picture_problem, wire_columns
from sync_core.server import key_slots
from sync_core.server.portraits import PortraitFiles
from sync_core.server.schema import JOURNAL_DDL, META_DDL, migrations
from sync_core.sql import Cursor

# The import reads each Parquet file in record batches of about this many bytes, so its
# memory stays flat whatever the size of the ship (portraits included); 4 MB batches
# raised the server's peak by ~12 MB more than 1 MB ones at 50,000 profiles.
IMPORT_BATCH_BYTES = 1024 * 1024


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


class ServerStore(ABC):
    """A server store; :meth:`import_ship` fills a new one.

    An imported store made by an earlier release is migrated as it opens
    (:mod:`sync_core.server.schema`). Subclasses call :meth:`_open` once connected; it
    raises StoreUnusable when a newer release made the store.
    """

    #: "duckdb" or "postgresql", as the health endpoint reports it
    engine: ClassVar[str]
    #: DuckDB type names of the datasets' columns that this engine spells otherwise
    TYPES: ClassVar[dict[str, str]] = {}
    #: the engine's error base class
    Error: ClassVar[type[Exception]]
    #: ``cursor()`` and ``transaction()`` for code written against DuckDB's ``Database``
    db: Any

    def __init__(self, label: str, portraits: Path) -> None:
        self.label = label  # names the store in messages (a path, or a URL without password)
        self.server_id: str | None = None
        self.portraits = PortraitFiles(portraits)
        self._migrations = migrations(self.portraits)
        self._write_lock = threading.Lock()
        self._unnamed: list[str] = []  # portraits whose rows the write in progress deleted
        self._feed = CachedRead(self._read_feed_bounds)

    def _open(self) -> None:
        try:
            with self.write() as cur:
                cur.execute(META_DDL)
                row = first_row(cur, "SELECT server_id FROM server_meta")
                if row:
                    migrate(cur, self._migrations)
        except NewerSchema as exc:
            self.close()
            raise StoreUnusable(self.label, f"made by a newer Muster ({exc})") from exc
        self.server_id = row[0] if row else None

    # -- what each engine supplies ----------------------------------------------------

    @abstractmethod
    def cursor(self) -> AbstractContextManager[Any]:
        """A cursor of its own for one unit of work, each statement committed by itself."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Any]:
        """A cursor inside one consistent read-only transaction (a snapshot of the store)."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A cursor inside BEGIN ... COMMIT; any exception rolls back and propagates."""

    @abstractmethod
    def arrow(self, cur: Any, sql: str, params: list[Any] | None = None) -> pa.Table:
        """The rows of ``sql`` as an Arrow table (DuckDB's types: string, int32, date32...)."""

    @abstractmethod
    def with_table(self, cur: Any, name: str, table: pa.Table) -> None:
        """Make ``table`` readable as relation ``name`` by ``cur``'s next statements (until
        its transaction ends); a second call with the same name replaces it."""

    @abstractmethod
    def _append(self, cur: Any, key: str, table: pa.Table) -> None:
        """Insert ``table`` (the dataset's columns then ``_seq``) into dataset table ``key``."""

    @abstractmethod
    def close(self) -> None:
        """Close the store cleanly (on SIGTERM, through the app's lifespan)."""

    def _whole_ship_gate(self) -> AbstractContextManager[Any]:
        """What a :meth:`whole_ship_read` holds while it runs: nothing, unless the engine
        needs its whole-ship reads one at a time."""
        return nullcontext()

    # -- shared -------------------------------------------------------------------------

    @contextmanager
    def whole_ship_read(self) -> Iterator[Any]:
        """:meth:`read` for a query over the whole ship's muster: the drill report, the
        dashboard, a station's counts, the orphan counts. On DuckDB these run one at a time:
        each may need most of the store's memory limit (a drill report of a 50,000-profile
        ship about 25 of its 32 MB), and two or three side by side ran out of memory. On
        PostgreSQL each query has work memory of its own, so they run side by side."""
        with self._whole_ship_gate(), self.read() as cur:
            yield cur

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A write transaction; writes run one at a time so sequence values commit in order.
        The files of portraits it :meth:`unnamed` are removed once it commits (still under
        the write lock, so a later write giving the same portrait again keeps its file)."""
        with self._write_lock:
            try:
                with self._transaction() as cur:
                    yield cur
                self.portraits.remove(self._unnamed)
            finally:
                self._unnamed.clear()
                self._feed.drop()

    @contextmanager
    def log_write(self) -> Iterator[Any]:
        """A write transaction for the registration log, which draws no change sequence
        value: it does not wait for other writes (the engine orders them) and leaves the
        change feed's bounds, kept in memory, as they are."""
        with self._transaction() as cur:
            yield cur

    def unnamed(self, sha256: str) -> None:
        """Inside :meth:`write`: the row of portrait ``sha256`` is deleted, so its file goes
        when the write commits."""
        self._unnamed.append(sha256)

    @property
    def imported(self) -> bool:
        """True once an import has committed (the server listens only then)."""
        return self.server_id is not None

    def import_ship(self, data_dir: Path) -> dict[str, int]:
        """Import ``data_dir/<key>.parquet`` for the six datasets; creates the server id.

        Rows are read and inserted in record batches of about ``IMPORT_BATCH_BYTES``, each
        stamped with the next change sequence values and committed by itself: DuckDB holds
        a transaction's new rows in memory, so one transaction for a whole ship grew with
        its portraits. The store counts as imported only once the last transaction writes
        ``server_meta``'s row; an import cut short is dropped and made again at the next
        start. Portraits are checked and written to their files as their batches pass, and
        synced to disk before the last transaction. Returns rows per dataset. Raises
        ShipDataError for a missing file or column, or a portrait a device would refuse
        (naming its profile), ValueError when the store was already imported.
        """
        if self.imported:
            raise ValueError(f"{self.label} already holds an import")
        files = {key: data_dir / f"{key}.parquet" for key in DATASETS}
        for path in files.values():
            if not path.is_file():
                raise ShipDataError(f"{path} is missing")
        with self.write() as cur:
            for table in ("journal", *DATASETS):
                cur.execute(f'DROP TABLE IF EXISTS "{table}"')  # an import cut short
            cur.execute("DROP SEQUENCE IF EXISTS change_seq")
            cur.execute(JOURNAL_DDL)
            for key in DATASETS:
                cur.execute(dataset_ddl(key, key, "_seq BIGINT NOT NULL", self.TYPES))
        seq = 0
        for key, path in files.items():
            for read in _batches(key, path):
                batch = self._keep_portraits(path, read) if key == "pictures" else read
                stamps = pa.array(range(seq + 1, seq + 1 + batch.num_rows), pa.int64())
                with self.write() as cur:
                    self._append(cur, key, pa.Table.from_batches([batch]).append_column("_seq", stamps))
                seq += batch.num_rows
        self.portraits.sync()
        server_id = str(uuid.uuid4())
        with self.write() as cur:
            counts = {key: scalar_int(cur, f'SELECT count(*) FROM "{key}"') for key in DATASETS}
            cur.execute(f"CREATE SEQUENCE change_seq START {seq + 1}")
            now = datetime.now(UTC).replace(tzinfo=None)
            cur.execute(
                "INSERT INTO server_meta (server_id, imported_at, horizon, last_seq, ship_key) "
                "VALUES ($1, $2, 0, $3, $4)",
                [server_id, now, seq, key_slots.imported_ship_key(data_dir)],
            )
            migrate(cur, self._migrations)
        self.server_id = server_id
        return counts

    def _keep_portraits(self, path: Path, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Write each portrait of ``batch`` (of the pictures file ``path``) to its file; the
        batch with ``jpeg`` NULL. Raises ShipDataError naming the profile of the first
        portrait that :func:`~sync_core.protocol.picture_problem` refuses."""
        columns = ("sha256", "profile_id", "jpeg")
        for sha256, profile_id, jpeg in zip(*(batch.column(c).to_pylist() for c in columns), strict=True):
            problem = picture_problem(sha256 or "", jpeg)
            if problem:
                raise ShipDataError(f"{path}: the portrait of profile {profile_id} is refused: {problem}")
            self.portraits.write(sha256, jpeg)
        index = batch.schema.get_field_index("jpeg")
        return batch.set_column(index, "jpeg", pa.nulls(batch.num_rows, pa.binary()))

    def user(self, username: str) -> ServerUser | None:
        """The user ``username``, or None."""
        with self.cursor() as cur:
            row = first_row(
                cur,
                "SELECT username, display_name, role, password_hash, key_slot FROM users WHERE username = $1",
                [username],
            )
        return ServerUser(*row) if row else None

    def ship_key(self) -> bytes | None:
        """The ship's data key (32 bytes) that key slots wrap, or None when the store has
        none (docs/security.md, 'Keys: the ship data key and key slots')."""
        with self.cursor() as cur:
            row = first_row(cur, "SELECT ship_key FROM server_meta")
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def feed_bounds(self) -> tuple[int, int]:
        """``(horizon, last_seq)`` of the change feed: the oldest cursor still served and the
        highest change committed. Kept in memory between writes, so an empty delta poll
        costs no query."""
        return self._feed.get()

    def _read_feed_bounds(self) -> tuple[int, int]:
        with self.cursor() as cur:
            return first_row(cur, "SELECT horizon, last_seq FROM server_meta") or (0, 0)

    def latest(self) -> int:
        """The highest change sequence committed (see :func:`latest_seq`)."""
        with self.cursor() as cur:
            return latest_seq(cur)

    def snapshot(self) -> Snapshot:
        """Read every dataset (pictures without bytes) and the cursor in one transaction."""
        with self.read() as cur:
            tables = {key: self._read_dataset(cur, key) for key in DATASETS}
            cursor = latest_seq(cur)
        return Snapshot(cursor=cursor, tables=tables)

    def _read_dataset(self, cur: Any, key: str) -> pa.Table:
        select = ", ".join(f'"{name}"' for name in wire_columns(key))
        return self.arrow(cur, f'SELECT {select} FROM "{key}" ORDER BY "{id_column(key)}"')

    def pictures(self, hashes: list[str]) -> Iterator[pa.RecordBatch]:
        """Portraits whose ``sha256`` is in ``hashes`` (those the store names now), read
        from their files as they are iterated: record batches of columns sha256,
        profile_id, jpeg (:meth:`PortraitFiles.batches`).

        The hashes go into the SQL as quoted literals so that DuckDB looks them up in the
        sha256 index.
        """
        wanted = ", ".join("'" + sha256.replace("'", "''") + "'" for sha256 in hashes) or "NULL"
        with self.cursor() as cur:
            owners = cur.execute(
                f"SELECT sha256, profile_id FROM pictures WHERE sha256 IN ({wanted})"
            ).fetchall()
        return self.portraits.batches(owners)

    def counts(self) -> dict[str, int]:
        """Records per dataset."""
        with self.cursor() as cur:
            return {key: scalar_int(cur, f'SELECT count(*) FROM "{key}"') for key in DATASETS}

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self.cursor() as cur:
                return first_row(cur, "SELECT 1") == (1,)
        except Exception:  # noqa: BLE001 - any failure means the DB is down
            return False


def open_server_store(db: str | Path, portraits: Path | None = None) -> ServerStore:
    """The server store named by ``db``: a ``postgresql://USER@HOST:PORT/DB`` URL opens
    PostgreSQL, anything else is a DuckDB file path (created when missing). Its portrait
    files go in the directory ``portraits`` (:mod:`sync_core.server.portraits`), by default
    ``FILE.portraits`` beside a DuckDB file; PostgreSQL needs one named.

    Raises StoreInUse (a DuckDB file another process holds) or StoreUnusable (also for a
    PostgreSQL store without ``portraits``).
    """
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        from sync_core.server.pg_store import PgServerStore, redacted

        if portraits is None:
            raise StoreUnusable(
                redacted(text), "a PostgreSQL store needs a portraits directory (--portraits DIR)"
            )
        return PgServerStore(text, portraits)
    from sync_core.server.duck_store import DuckServerStore

    return DuckServerStore(text, portraits or Path(f"{text}.portraits"))


def latest_seq(cur: Cursor) -> int:
    """The highest change sequence committed and visible to ``cur``'s transaction.

    Read from ``server_meta.last_seq``, which every write updates inside its own
    transaction, so it is as consistent as the rows it describes.
    """
    return scalar_int(cur, "SELECT last_seq FROM server_meta")


def _batches(key: str, path: Path) -> Iterator[pa.RecordBatch]:
    """Dataset ``key``'s columns of the Parquet file ``path``, in record batches of about
    ``IMPORT_BATCH_BYTES`` (sized from the file's own row sizes). Raises ShipDataError for
    a missing column, a file that is not Parquet or one whose pages cannot be read."""
    names = [name for name, _ in DATASET_COLUMNS[key]]
    try:
        # pre_buffer (the default) kept every column chunk read so far: memory grew with
        # the file; a plain buffered read keeps one batch.
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShipDataError(f"{path} is not a Parquet file: {exc}") from exc
    missing = [name for name in names if name not in parquet.schema_arrow.names]
    if missing:
        raise ShipDataError(f"{path} lacks columns {missing}")
    meta = parquet.metadata
    total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    rows = max(1, int(IMPORT_BATCH_BYTES * max(meta.num_rows, 1) / max(total, 1)))
    try:
        with parquet:
            # One thread: decoding threads each kept their own allocator arena of freed batches.
            yield from parquet.iter_batches(batch_size=rows, columns=names, use_threads=False)
    except (pa.ArrowInvalid, OSError) as exc:  # damaged after its footer
        raise ShipDataError(f"{path} cannot be read: {exc}") from exc
