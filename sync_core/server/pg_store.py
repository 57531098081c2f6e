"""The server store on PostgreSQL, the ship's DB server
(``muster server --db postgresql://USER@HOST:PORT/DB``).

psycopg 3 with a connection pool; cursors are ``RawCursor``s, so the shared SQL's ``$1``
parameters reach PostgreSQL as they are. Connections run in autocommit; a transaction is
an explicit block. A full snapshot is one ``REPEATABLE READ`` read-only transaction, so
every dataset and the cursor come from the same instant. Rows come back as Python values
and are put into Arrow tables of the same types DuckDB gives (string, int32, date32,
binary...), so devices receive the same streams from either store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pyarrow as pa
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from sync_core.errors import StoreUnusable
from sync_core.server.store import ServerStore

# Connections kept open: the request threads of one server process share them.
POOL_MIN, POOL_MAX = 2, 16
CONNECT_TIMEOUT = 10.0
ARROW_ROWS = 2000
# PostgreSQL type OIDs -> the Arrow types DuckDB gives for the same columns.
_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
}
# Arrow types -> PostgreSQL column types, for a table made readable by with_table.
_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.binary(): "BYTEA",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
}


_QMARK = re.compile(r"'(?:[^']|'')*'|\?")


def dollar_params(sql: str) -> str:
    """``sql`` with DuckDB's ``?`` parameters numbered ``$1``, ``$2``... as PostgreSQL
    wants them (a ``?`` inside a quoted literal is left alone)."""
    if "?" not in sql:
        return sql
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _QMARK.sub(number, sql)


class _Cursor(psycopg.RawCursor[Any]):
    """A RawCursor that also takes the ``?`` parameters the server's DuckDB-first SQL uses."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(dollar_params(query) if isinstance(query, str) else query, params, **kwargs)


class _Handle:
    """``store.db`` for code written against the DuckDB ``Database``: ``cursor()`` and
    ``transaction()`` of the PostgreSQL store."""

    def __init__(self, store: PgServerStore) -> None:
        self._store = store

    def cursor(self) -> Any:
        return self._store.cursor()

    def transaction(self) -> Any:
        return self._store._transaction()

    def close(self) -> None:
        self._store.close()


def redacted(url: str) -> str:
    """``url`` without its password, to name the store in messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable address)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class PgServerStore(ServerStore):
    """The server store in the PostgreSQL database at ``url``, its portrait files in the
    directory ``portraits`` (of this machine).

    Raises StoreUnusable when the database cannot be reached within ``CONNECT_TIMEOUT``
    seconds or a newer release made the store.
    """

    engine = "postgresql"
    TYPES = {"BLOB": "BYTEA"}
    Error = psycopg.Error

    def __init__(self, url: str, portraits: Path) -> None:
        super().__init__(redacted(url), portraits)
        self._pool = ConnectionPool(
            url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            kwargs={"autocommit": True, "cursor_factory": _Cursor},
            open=False,
            name="muster-server",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:  # PoolTimeout is one
            self._pool.close()
            raise StoreUnusable(
                self.label, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ) from exc
        self.db = _Handle(self)
        self._add_duckdb_functions()
        self._open()

    def _add_duckdb_functions(self) -> None:
        """DuckDB functions the shared SQL uses that PostgreSQL lacks (the name search's
        ``contains`` and ``strip_accents``; the latter from the ``unaccent`` extension when
        the server has it, else accents are kept)."""
        with self._transaction() as cur:
            cur.execute(
                "CREATE OR REPLACE FUNCTION contains(haystack text, needle text) RETURNS boolean "
                "LANGUAGE sql IMMUTABLE AS 'SELECT strpos(haystack, needle) > 0'"
            )
            found = "SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'"
            available = cur.execute(found).fetchall()
            if available:
                cur.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
            body = "SELECT unaccent(t)" if available else "SELECT t"
            cur.execute(
                "CREATE OR REPLACE FUNCTION strip_accents(t text) RETURNS text "
                f"LANGUAGE sql STABLE AS '{body}'"
            )

    @contextmanager
    def cursor(self) -> Iterator[psycopg.RawCursor[Any]]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur  # type: ignore[misc]

    @contextmanager
    def read(self) -> Iterator[psycopg.RawCursor[Any]]:
        with self._transaction() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield cur

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.RawCursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur  # type: ignore[misc]

    def arrow(self, cur: psycopg.RawCursor[Any], sql: str, params: list[Any] | None = None) -> pa.Table:
        """Rows become Arrow ``ARROW_ROWS`` at a time, so a big ship's snapshot is never held
        whole as Python tuples."""
        cur.execute(sql, params)
        schema = pa.schema(
            [
                (column.name, _ARROW_TYPES.get(column.type_code, pa.string()))
                for column in cur.description or []
            ]
        )
        batches = []
        while rows := cur.fetchmany(ARROW_ROWS):
            columns = zip(*rows, strict=True)
            batches.append(
                pa.record_batch(
                    [pa.array(values, f.type) for values, f in zip(columns, schema, strict=True)], schema
                )
            )
        return pa.Table.from_batches(batches, schema)

    def with_table(self, cur: psycopg.RawCursor[Any], name: str, table: pa.Table) -> None:
        columns = ", ".join(f'"{field.name}" {_SQL_TYPES[field.type]}' for field in table.schema)
        cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        cur.execute(f'CREATE TEMP TABLE "{name}" ({columns}) ON COMMIT DROP')
        self._copy(cur, name, table)

    def _append(self, cur: psycopg.RawCursor[Any], key: str, table: pa.Table) -> None:
        self._copy(cur, key, table)

    def _copy(self, cur: psycopg.RawCursor[Any], name: str, table: pa.Table) -> None:
        """``table``'s rows into table ``name`` by a binary COPY (portraits travel as they are)."""
        names = ", ".join(f'"{column}"' for column in table.column_names)
        with cur.copy(f'COPY "{name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types([_SQL_TYPES[field.type].lower() for field in table.schema])
            for batch in table.to_batches(max_chunksize=1000):
                for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    copy.write_row(row)

    def close(self) -> None:
        self._pool.close()
