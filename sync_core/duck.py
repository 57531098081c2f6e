"""Opening DuckDB files the same way on the device and on the server.

Extension auto-install is off: with no network a failed install stalls ~2.8 s.
A DuckDB connection is not shareable across threads, so every unit of
work takes its own cursor from :meth:`Database.cursor`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

import duckdb

from sync_core.errors import StoreInUse, StoreUnusable
from sync_core.files import make_private
from sync_core.protocol import DATASET_COLUMNS
from sync_core.sql import Cursor

T = TypeVar("T")
CLOSE_WAIT = 30.0
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# The name of a file opened with a row group size (:class:`Database`). A full sync of a
# 50,000-profile ship (rows only) peaked ~15 MB over one of 10,000 with DuckDB's row groups,
# ~6 MB over it with 8,192 rows a row group, here.
ATTACHED = "store"


class Database:
    """A DuckDB file held by this process.

    ``settings`` adds DuckDB configuration options. ``row_group_rows`` sets the rows of the
    row groups the file's tables grow by (DuckDB's default: 122,880), for this opening: a
    table's rows stay in memory until a checkpoint writes them, and a checkpoint compresses
    a row group whole, so smaller row groups bound both (see :data:`ATTACHED`). Raises
    StoreInUse, naming ``holder``, when another process holds the file, and StoreUnusable
    when it is not a DuckDB file or cannot be created.
    """

    def __init__(
        self,
        path: Path | str,
        holder: str = "the running app",
        settings: dict[str, str | int] | None = None,
        row_group_rows: int | None = None,
    ) -> None:
        self.path = str(path)
        self._config: dict[str, str | bool | int | float | list[str]] = {**DUCKDB_CONFIG, **(settings or {})}
        self._holder = holder
        self._row_group_rows = row_group_rows
        self._con = self._connect()
        self._idle = threading.Condition()
        self._active = 0  # cursors in use: close() waits for them

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file (its files made private: :mod:`sync_core.files`)."""
        try:
            con = self._open()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreInUse(self.path, self._holder) from exc
            raise StoreUnusable(self.path, str(exc).splitlines()[0]) from exc
        except duckdb.Error as exc:
            raise StoreUnusable(self.path, str(exc).splitlines()[0]) from exc
        make_private(Path(self.path), Path(self.path + ".wal"))
        return con

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A connection to the file: opened directly, or, with ``row_group_rows``, attached
        as :data:`ATTACHED` to an in-memory database (the only way DuckDB takes a row group
        size) and made every cursor's default (:meth:`cursor`). Raises ``duckdb.Error``."""
        if self._row_group_rows is None:
            return duckdb.connect(self.path, config=self._config)
        # an in-memory database keeps its temporary files in the working directory
        con = duckdb.connect(config={"temp_directory": f"{self.path}.tmp", **self._config})
        try:
            path = self.path.replace("'", "''")
            con.execute(f"ATTACH '{path}' AS {ATTACHED} (ROW_GROUP_SIZE {int(self._row_group_rows)})")
            con.execute(f"USE {ATTACHED}")
        except duckdb.Error:
            con.close()
            raise
        return con

    def reopen(self, between: Callable[[], None]) -> None:
        """Close the file once the work in flight is done (as :meth:`close`), call
        ``between()`` (which may replace the file), and open the file at the path again;
        cursors asked for meanwhile wait. Raises what ``between`` or opening raises (the
        file is opened again either way, when it can be)."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=CLOSE_WAIT)
            self._con.close()
            try:
                between()
            finally:
                self._con = self._connect()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one unit of work on the calling thread; closed after."""
        with self._idle:
            cur = self._con.cursor()
            self._active += 1
        try:
            if self._row_group_rows is not None:
                cur.execute(f"USE {ATTACHED}")  # a cursor starts in the in-memory database
            yield cur
        finally:
            cur.close()
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN ... COMMIT; any exception rolls back and propagates."""
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        """Close the file once the work in flight on other threads is done (a worker thread
        an app's quit left running), waiting at most ``CLOSE_WAIT`` seconds; later calls fail."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=CLOSE_WAIT)
            self._con.close()


def dataset_ddl(
    table: str,
    key: str,
    extra: str = "",
    types: dict[str, str] | None = None,
    columns: tuple[tuple[str, str], ...] | None = None,
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` with dataset ``key``'s columns (or
    ``columns``, ``(name, DuckDB type)`` pairs: the device's, with personal fields sealed).

    ``extra`` appends column definitions (the server adds its change sequence); ``types``
    renames column types for another engine (PostgreSQL's ``BYTEA`` for ``BLOB``).
    """
    types = types or {}
    defined = ", ".join(f'"{col}" {types.get(kind, kind)}' for col, kind in columns or DATASET_COLUMNS[key])
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({defined}{", " + extra if extra else ""})'


def naive_utc(at: datetime) -> datetime:
    """``at`` (aware) as the naive UTC datetime a ``TIMESTAMP`` column keeps."""
    return at.astimezone(UTC).replace(tzinfo=None)


def aware_utc(value: datetime | None) -> datetime | None:
    """A ``TIMESTAMP`` column's naive UTC ``value`` as an aware datetime (None stays None)."""
    return None if value is None else value.replace(tzinfo=UTC)


def first_row(cur: Cursor, sql: str, params: list[object] | None = None) -> tuple | None:
    """The first row of ``sql``, or None; the result is read to its end so ``cur`` is free
    for the next statement (DuckDB 2.0 refuses new work while a result is unfinished)."""
    rows = cur.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(cur: Cursor, sql: str, params: list[object] | None = None) -> object:
    """The first column of :func:`first_row`, or None."""
    row = first_row(cur, sql, params)
    return row[0] if row else None


def scalar_int(cur: Cursor, sql: str, params: list[object] | None = None) -> int:
    """The first column of :func:`first_row` as an int; 0 when there is no row or it is NULL.

    Raises TypeError when the value is not an integer (a query that counts something else)."""
    value = scalar(cur, sql, params)
    if value is None:
        return 0
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from {sql!r}, got {type(value).__name__}")
    return value


class CachedRead(Generic[T]):
    """A value read from a store by ``read``, kept in memory until :meth:`drop` (called after
    every write that may change it commits or rolls back). A read that overlaps a write is
    returned but not kept, so the cache never holds a value older than the last write."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._value: tuple[T, ...] = ()  # () while unknown
        self._generation = 0

    def get(self) -> T:
        """The kept value, or a fresh read (kept unless a write ended meanwhile)."""
        with self._lock:
            kept, generation = self._value, self._generation
        if kept:
            return kept[0]
        value = self._read()
        with self._lock:
            if self._generation == generation:
                self._value = (value,)
        return value

    def put(self, value: T) -> None:
        """Keep ``value``: what a read gives now that the write which made it has committed."""
        with self._lock:
            self._value = (value,)
            self._generation += 1

    def drop(self) -> None:
        """Forget the value: a write that may change it has ended."""
        with self._lock:
            self._value = ()
            self._generation += 1
