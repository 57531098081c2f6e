"""The change feed: what changed after a device's cursor, one page at a time.

A delta is "changes with seq > cursor, in seq order, paged" (docs/architecture.md, 'Server sequence,
not device time'). A page is read from the journal: its first ``limit`` entries after the cursor. It
covers the sequence range ``(after, cursor]`` and holds every change in that range, so the device
can commit the page and its new cursor together ('Cursor and rows commit together') and never skips.
A record's current row is in the page only when its ``_seq`` is within the range (a later change of
it comes with a later page), so the rows are those of the changed datasets whose ``_seq`` lies in
the range. Cursors older than the tombstone horizon raise :class:`CursorTooOld` (HTTP 410, 'Deletes
travel as tombstones').
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from sync_core.duck import first_row, scalar
from sync_core.errors import CursorTooOld
from sync_core.protocol import wire_columns
from sync_core.server.store import ServerStore


@dataclass(frozen=True)
class ChangePage:
    """Changes in ``(after, cursor]``: upserted rows (wire columns) and deleted ids per dataset.

    ``more`` is True when changes after ``cursor`` exist.
    """

    cursor: int
    more: bool
    upserts: dict[str, pa.Table]
    deletes: dict[str, list[str]]


def _check_cursor(after: int, horizon: int, latest: int) -> None:
    if after < horizon:
        raise CursorTooOld(f"cursor {after} is older than the tombstone horizon {horizon}")
    if after > latest:
        raise CursorTooOld(f"cursor {after} is ahead of this server's latest change {latest}")


def empty_page(store: ServerStore, after: int) -> ChangePage | None:
    """The answer to a poll with nothing after ``after``, from the store's bounds kept in
    memory (no query); None when there are changes to read with :func:`read_page`.

    Raises CursorTooOld as :func:`read_page` does.
    """
    horizon, latest = store.feed_bounds()
    _check_cursor(after, horizon, latest)
    return ChangePage(cursor=after, more=False, upserts={}, deletes={}) if after == latest else None


def read_page(store: ServerStore, after: int, limit: int) -> ChangePage:
    """One page of at most ``limit`` changes after ``after``, from one consistent read.

    Raises CursorTooOld when ``after`` is below the tombstone horizon or above the latest
    change (a store restored from an older copy).
    """
    with store.db.transaction() as cur:
        horizon, latest = first_row(cur, "SELECT horizon, last_seq FROM server_meta")  # type: ignore[misc]
        _check_cursor(after, horizon, latest)
        entries = cur.execute(
            "SELECT _seq, key, id, op FROM journal WHERE _seq > $1 ORDER BY _seq LIMIT $2", [after, limit]
        ).fetchall()
        cursor = entries[-1][0] if len(entries) == limit else latest
        changed: set[str] = set()
        deletes: dict[str, list[str]] = defaultdict(list)
        for _, key, record_id, op in entries:
            (changed.add(key) if op == "set" else deletes[key].append(record_id))
        upserts = {key: _rows(cur, key, after, cursor) for key in changed}
        return ChangePage(
            cursor=cursor,
            more=latest > cursor,
            upserts={key: rows for key, rows in upserts.items() if rows.num_rows},
            deletes=dict(deletes),
        )


def _rows(cur: duckdb.DuckDBPyConnection, key: str, after: int, upto: int) -> pa.Table:
    """Rows of ``key`` last changed in ``(after, upto]``: exactly the page's upserts, in no
    particular order (each record appears once; an ORDER BY cost 1.3 ms of 4.2 here).

    The bounds are inlined as integers: DuckDB's relation API with bound parameters took
    ~4x longer here (19 ms against 5 ms for 100 reservations).
    """
    select = ", ".join(f'"{name}"' for name in wire_columns(key))
    return cur.sql(
        f'SELECT {select} FROM "{key}" WHERE _seq > {int(after)} AND _seq <= {int(upto)}'
    ).to_arrow_table()


def prune_tombstones(store: ServerStore, older_than: datetime) -> int:
    """Drop journal entries (tombstones included) older than ``older_than`` (naive UTC) and
    raise the horizon to the newest dropped; returns the horizon.

    Afterwards a cursor below the horizon gets CursorTooOld: the deletes it would need are
    gone.
    """
    with store.write() as cur:
        cur.execute(
            "UPDATE server_meta SET horizon = greatest(horizon, "
            "(SELECT coalesce(max(_seq), 0) FROM journal WHERE changed_at < $1))",
            [older_than],
        )
        cur.execute("DELETE FROM journal WHERE changed_at < $1", [older_than])
        return int(scalar(cur, "SELECT horizon FROM server_meta"))  # type: ignore[call-overload]
