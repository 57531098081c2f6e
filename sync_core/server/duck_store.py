"""The server store in an embedded DuckDB file (``muster server --db FILE.duckdb``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sync_core.duck import Database
from sync_core.server.store import ServerStore

# DuckDB's buffer pool is capped: by default it may take 80 % of the machine's memory,
# and an import filled it with the ship's pages. Portraits are files (server/portraits.py),
# so the store's pages are rows of text and numbers: with 32 MB instead of 128 MB the
# server's peak importing and serving 50,000 profiles was ~20 MB lower (a sort that needs
# more spills to the store's temporary directory). One thread per query: the server's
# queries are small and run side by side on the request threads, and a snapshot of 50,000
# profiles read on two threads peaked ~10 MB higher.
SERVER_SETTINGS: dict[str, str | int] = {"memory_limit": "32MB", "threads": 1}

# Opening migrates the store under a higher limit, and checkpoints before lowering it: a
# store of an earlier release still holds its portraits as BLOBs, and DuckDB reads them
# 2,048 rows at a time (up to 512 MB at the largest allowed portrait). At 32 MB, moving
# 10,000 portraits of 40 KB out to their files ran out of memory, and a checkpoint that
# ran out of memory after the move left the database unusable.
MIGRATION_MEMORY_LIMIT = "1GB"


class DuckServerStore(ServerStore):
    """The server store in the DuckDB file at ``path`` (created when missing), its portrait
    files in the directory ``portraits``.

    Raises ``sync_core.errors.StoreInUse`` when another process holds the file,
    StoreUnusable when it is not a DuckDB file or a newer release made it.
    """

    engine = "duckdb"
    Error = duckdb.Error

    def __init__(self, path: Path | str, portraits: Path) -> None:
        super().__init__(str(path), portraits)
        self._whole_ship_lock = threading.Lock()
        settings = {**SERVER_SETTINGS, "memory_limit": MIGRATION_MEMORY_LIMIT}
        self.db = Database(path, holder="another server process", settings=settings)
        self._open()
        with self.db.cursor() as cur:
            cur.execute("CHECKPOINT")
            cur.execute(f"SET memory_limit = '{SERVER_SETTINGS['memory_limit']}'")

    def cursor(self) -> Any:
        return self.db.cursor()

    def _whole_ship_gate(self) -> Any:
        return self._whole_ship_lock

    def read(self) -> Any:
        return self.db.transaction()  # DuckDB's transactions read one snapshot

    def _transaction(self) -> Any:
        return self.db.transaction()

    def arrow(self, cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pa.Table:
        # The relation API: a DB-API result's Arrow output copies the rows once more.
        return cur.sql(sql, params=params).to_arrow_table()

    def with_table(self, cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
        # Registered on the cursor, it lasts until the cursor closes with its transaction (an
        # aborted transaction refuses even an unregister).
        cur.register(name, table)

    def _append(self, cur: duckdb.DuckDBPyConnection, key: str, table: pa.Table) -> None:
        self.with_table(cur, "batch", table)
        cur.execute(f'INSERT INTO "{key}" SELECT * FROM batch')

    def close(self) -> None:
        self.db.close()
