"""The change feed: what changed after a device's cursor, one page at a time.

A delta is "changes with seq > cursor, in seq order, paged" (DESIGN.md invariant 1). A page
covers the sequence range ``(after, cursor]`` holding at most ``limit`` changes; every row
and tombstone in that range is in the page, so the device can commit the page and its new
cursor together (invariant 2) and never skips. Cursors older than the tombstone horizon
raise :class:`CursorTooOld` (HTTP 410, invariant 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from sync_core.duck import first_row, scalar
from sync_core.protocol import DATASETS, wire_columns
from sync_core.server.store import ServerStore


class CursorTooOld(Exception):
    """The cursor is older than the tombstone horizon: the device must run a full sync."""


@dataclass(frozen=True)
class ChangePage:
    """Changes in ``(after, cursor]``: upserted rows (wire columns) and deleted ids per dataset.

    ``more`` is True when changes after ``cursor`` exist.
    """

    cursor: int
    more: bool
    upserts: dict[str, pa.Table]
    deletes: dict[str, list[str]]


def _seqs_after(start: str) -> str:
    tables = (*DATASETS, "tombstones")
    return " UNION ALL ".join(f'SELECT _seq FROM "{table}" WHERE _seq > {start}' for table in tables)


def read_page(store: ServerStore, after: int, limit: int) -> ChangePage:
    """One page of at most ``limit`` changes after ``after``, from one consistent read.

    Raises CursorTooOld when ``after`` is below the tombstone horizon.
    """
    with store.db.transaction() as cur:
        horizon, latest = first_row(cur, "SELECT horizon, last_seq FROM server_meta")  # type: ignore[misc]
        if after < horizon:
            raise CursorTooOld(f"cursor {after} is older than the tombstone horizon {horizon}")
        if after > latest:  # the store was restored from an older copy
            raise CursorTooOld(f"cursor {after} is ahead of this server's latest change {latest}")
        if after == latest:
            return ChangePage(cursor=after, more=False, upserts={}, deletes={})
        last = first_row(
            cur, f"SELECT _seq FROM ({_seqs_after('$1')}) ORDER BY _seq LIMIT 1 OFFSET $2", [after, limit - 1]
        )
        cursor = last[0] if last else latest
        return ChangePage(
            cursor=cursor,
            more=latest > cursor,
            upserts=_upserts(cur, after, cursor),
            deletes=_deletes(cur, after, cursor),
        )


def _upserts(cur: duckdb.DuckDBPyConnection, after: int, upto: int) -> dict[str, pa.Table]:
    found = {}
    for key in DATASETS:
        select = ", ".join(f'"{name}"' for name in wire_columns(key))
        rows = cur.sql(
            f'SELECT {select} FROM "{key}" WHERE _seq > $1 AND _seq <= $2 ORDER BY _seq', params=[after, upto]
        ).to_arrow_table()
        if rows.num_rows:
            found[key] = rows
    return found


def _deletes(cur: duckdb.DuckDBPyConnection, after: int, upto: int) -> dict[str, list[str]]:
    rows = cur.execute(
        "SELECT key, list(id ORDER BY _seq) FROM tombstones WHERE _seq > $1 AND _seq <= $2 GROUP BY key",
        [after, upto],
    ).fetchall()
    return dict(rows)


def prune_tombstones(store: ServerStore, deleted_before: datetime) -> int:
    """Drop tombstones older than ``deleted_before`` (naive UTC) and raise the horizon.

    Afterwards a cursor below the highest pruned seq gets CursorTooOld. Returns the horizon.
    """
    with store.write() as cur:
        cur.execute(
            "UPDATE server_meta SET horizon = greatest(horizon, "
            "(SELECT coalesce(max(_seq), 0) FROM tombstones WHERE deleted_at < $1))",
            [deleted_before],
        )
        cur.execute("DELETE FROM tombstones WHERE deleted_at < $1", [deleted_before])
        return scalar(cur, "SELECT horizon FROM server_meta")
