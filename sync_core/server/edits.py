"""The ship's office changes server data: set fields of / create / delete records, replace
portraits. Each call is one write transaction; every change draws the next change sequence
value, stamps the row with it and leaves a journal entry (a delete's entry is its
tombstone; DESIGN.md invariants 1 and 3).
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from typing import Any

import duckdb
from PIL import Image, UnidentifiedImageError

from sync_core.duck import first_row, scalar
from sync_core.protocol import DATASET_COLUMNS, PICTURE_MAX_BYTES, RecordChange, id_column
from sync_core.server.store import ServerStore


class EditRejected(ValueError):
    """An edit names an unknown dataset, field or record, or carries a bad picture."""


def apply_changes(store: ServerStore, changes: list[RecordChange]) -> int:
    """Apply ``changes`` in order in one transaction; returns the cursor after them.

    Raises EditRejected (nothing is applied) for an unknown dataset / field, a delete of a
    missing record, or a value DuckDB cannot store in its column.
    """
    with store.write() as cur:
        for change in changes:
            if change.op == "delete":
                _delete(cur, change.key, change.id)
            else:
                _set(cur, change.key, change.id, change.fields)
        return _commit_seq(cur)


def replace_picture(store: ServerStore, profile_id: str, jpeg: bytes) -> int:
    """Give profile ``profile_id`` the portrait ``jpeg``; returns the cursor after it.

    The old portrait is deleted, the new one added, and the reservation's
    ``picture_sha256`` changes. Raises EditRejected for an unknown profile, an oversize
    file (over ``PICTURE_MAX_BYTES``) or bytes that are not a JPEG image.
    """
    _check_jpeg(jpeg)
    sha256 = hashlib.sha256(jpeg).hexdigest()
    with store.write() as cur:
        if _row(cur, "reservations", profile_id) is None:
            raise EditRejected(f"no reservation {profile_id!r}")
        for (old,) in cur.execute(
            "SELECT sha256 FROM pictures WHERE profile_id = ?", [profile_id]
        ).fetchall():
            _delete(cur, "pictures", old)
        seq = _journal(cur, "pictures", sha256, "set")
        cur.execute("INSERT INTO pictures VALUES (?, ?, ?, ?)", [sha256, profile_id, jpeg, seq])
        _set(cur, "reservations", profile_id, {"picture_sha256": sha256})
        return _commit_seq(cur)


def _check_jpeg(jpeg: bytes) -> None:
    if len(jpeg) > PICTURE_MAX_BYTES:
        raise EditRejected(f"picture is {len(jpeg)} bytes; at most {PICTURE_MAX_BYTES} allowed")
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if image.format != "JPEG":
                raise EditRejected(f"picture is {image.format}, not JPEG")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise EditRejected("picture is not a readable JPEG image") from exc


def _journal(cur: duckdb.DuckDBPyConnection, key: str, record_id: str, op: str) -> int:
    """Draw the next change sequence value for ``op`` on a record and journal it."""
    seq = int(scalar(cur, "SELECT nextval('change_seq')"))  # type: ignore[call-overload]
    now = datetime.now(UTC).replace(tzinfo=None)
    cur.execute("INSERT INTO journal VALUES (?, ?, ?, ?, ?)", [seq, key, record_id, op, now])
    return seq


def _commit_seq(cur: duckdb.DuckDBPyConnection) -> int:
    """Make this transaction's last sequence value the committed ``last_seq``; return it."""
    cur.execute("UPDATE server_meta SET last_seq = (SELECT max(_seq) FROM journal)")
    return int(scalar(cur, "SELECT last_seq FROM server_meta"))  # type: ignore[call-overload]


def _columns(key: str) -> list[str]:
    if key not in DATASET_COLUMNS:
        raise EditRejected(f"unknown dataset {key!r}")
    return [name for name, _ in DATASET_COLUMNS[key]]


def _row(cur: duckdb.DuckDBPyConnection, key: str, record_id: str) -> dict[str, Any] | None:
    columns = _columns(key)
    select = ", ".join(f'"{c}"' for c in columns)
    row = first_row(cur, f'SELECT {select} FROM "{key}" WHERE "{id_column(key)}" = ?', [record_id])
    return dict(zip(columns, row, strict=True)) if row else None


def _set(cur: duckdb.DuckDBPyConnection, key: str, record_id: str, fields: dict[str, Any]) -> None:
    columns = _columns(key)
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise EditRejected(f"{key} has no field(s) {unknown}")
    if key == "pictures":
        raise EditRejected("portraits are replaced through the picture endpoint")
    row = _row(cur, key, record_id) or dict.fromkeys(columns)
    row |= fields | {id_column(key): record_id}
    seq = _journal(cur, key, record_id, "set")
    cur.execute(f'DELETE FROM "{key}" WHERE "{id_column(key)}" = ?', [record_id])
    marks = ", ".join("?" for _ in columns)
    try:
        cur.execute(f'INSERT INTO "{key}" VALUES ({marks}, ?)', [*(row[c] for c in columns), seq])
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.BinderException) as exc:
        reason = str(exc).splitlines()[0]  # DuckDB appends the statement; keep the reason
        raise EditRejected(f"{key} {record_id!r}: a value does not fit its field: {reason}") from exc


def _delete(cur: duckdb.DuckDBPyConnection, key: str, record_id: str) -> None:
    _columns(key)
    gone = cur.execute(
        f'DELETE FROM "{key}" WHERE "{id_column(key)}" = ? RETURNING 1', [record_id]
    ).fetchall()
    if not gone:
        raise EditRejected(f"no {key} record {record_id!r}")
    _journal(cur, key, record_id, "delete")
    if key == "reservations":
        for (sha256,) in cur.execute(
            "SELECT sha256 FROM pictures WHERE profile_id = ?", [record_id]
        ).fetchall():
            _delete(cur, "pictures", sha256)
