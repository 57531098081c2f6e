"""The ship's office changes server data: set fields of / create / delete records, replace
portraits. Each call is one write transaction; every change draws the next change sequence
value, stamps the row with it and leaves a journal entry (a delete's entry is its
tombstone; docs/architecture.md, 'Server sequence, not device time' and 'Deletes travel as
tombstones').
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, date, datetime
from typing import Any

from PIL import Image, UnidentifiedImageError

from sync_core.duck import first_row, scalar
from sync_core.errors import EditRejected, StillNamed
from sync_core.protocol import DATASET_COLUMNS, PICTURE_MAX_BYTES, RecordChange, id_column
from sync_core.server.key_slots import PASSWORD_FIELD, with_password
from sync_core.server.store import ServerStore, latest_seq

# Fields a record may not lack (every profile has a board card and a muster station; a user signs in
# with a password hash, made from the edit's ``password``: sync_core.server.key_slots).
REQUIRED: dict[str, tuple[str, ...]] = {
    "users": ("display_name", "role", "password_hash"),
    "muster_stations": ("name", "type", "capacity"),
    "lifeboats": ("type", "capacity"),
    "parameters": ("value",),
    "reservations": ("profile_type", "last_name", "board_card_number", "muster_station"),
}
# Fields naming a record of another dataset: (dataset, its id column).
REFERENCES = {
    ("reservations", "muster_station"): "muster_stations",
    ("reservations", "lifeboat"): "lifeboats",
}
# General parameters whose value names a record of a dataset.
PARAMETER_REFERENCES = {"default_muster_station": "muster_stations"}
TEXT_MAX = 500


def _check_value(key: str, name: str, value: Any) -> None:
    """A JSON value must already have its column's type: text for VARCHAR (at most
    ``TEXT_MAX`` characters), a whole number for INTEGER, an ISO date text for DATE."""
    kind = dict(DATASET_COLUMNS[key])[name]
    if value is None:
        return
    if kind == "INTEGER" and (isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**31):
        raise EditRejected(f"{key}.{name} takes a whole number, not {value!r:.40}")
    if kind in ("VARCHAR", "DATE") and not isinstance(value, str):
        raise EditRejected(f"{key}.{name} takes text, not {value!r:.40}")
    if kind == "VARCHAR" and len(value) > TEXT_MAX:
        raise EditRejected(f"{key}.{name} is {len(value)} characters; at most {TEXT_MAX}")
    if kind == "DATE":
        try:
            date.fromisoformat(value)
        except ValueError as exc:
            raise EditRejected(f"{key}.{name} takes a date as YYYY-MM-DD, not {value!r:.40}") from exc


def _parameter_value(name: str, declared: str | None, value: Any) -> Any:
    """General parameter ``name``'s ``value`` as the text its declared type (``int``,
    ``bool``, else text) stores: ``3`` or ``"3"`` -> ``"3"`` for an int, ``true`` ->
    ``"true"`` for a bool, a number -> its text for a text parameter. Values of another
    shape are left for :func:`_check_value` to refuse; text that is no whole number (int)
    or not true / false (bool) raises EditRejected."""
    if value is None or isinstance(value, (list, dict)):
        return value
    if declared == "int":
        try:
            if isinstance(value, (bool, float)):
                raise ValueError
            return str(int(value))
        except ValueError:
            raise EditRejected(f"parameter {name} takes a whole number, not {value!r:.40}") from None
    if declared == "bool":
        text = str(value).lower() if isinstance(value, (bool, str)) else ""
        if text not in ("true", "false"):
            raise EditRejected(f"parameter {name} takes true or false, not {value!r:.40}")
        return text
    return value if isinstance(value, str) else json.dumps(value)


def _check_references(cur: Any, key: str, row: dict[str, Any]) -> None:
    for (source, name), target in REFERENCES.items():
        value = row.get(name) if source == key else None
        if value is not None and _row(cur, target, value) is None:
            raise EditRejected(f"{key}.{name}: there is no {target} record {value!r}")


def apply_changes(store: ServerStore, changes: list[RecordChange]) -> int:
    """Apply ``changes`` in order in one transaction; returns the cursor after them.

    Raises EditRejected (nothing is applied) for an unknown dataset / field, a delete of a
    missing record, a value DuckDB cannot store in its column, or a profile's
    ``picture_sha256`` (see :func:`replace_picture`); StillNamed for a delete of a muster
    station or lifeboat that profiles or a general parameter still name.
    """
    prepared = _with_passwords(store, changes)
    with store.write() as cur:
        for change, fields in prepared:
            if change.key == "reservations" and "picture_sha256" in fields:
                # Every portrait a profile names is journaled as a picture row, which is
                # how a device learns which portraits to fetch (sync_core.device.engine).
                raise EditRejected("a portrait is replaced through the picture endpoint, not by its hash")
            if change.op == "delete":
                _delete(store, cur, change.key, change.id)
            else:
                _set(store, cur, change.key, change.id, fields)
        return _commit_seq(cur)


def _with_passwords(
    store: ServerStore, changes: list[RecordChange]
) -> list[tuple[RecordChange, dict[str, Any]]]:
    """Each change with its fields, a users ``password`` replaced by its verifier and key slot
    (:func:`~sync_core.server.key_slots.with_password`): the derivations run here, before the
    write lock, so setting a crew's passwords does not hold every other edit and sign-in's
    slot writer for ~40 ms a user. Raises EditRejected for a bad password."""
    setting = any(change.key == "users" and PASSWORD_FIELD in change.fields for change in changes)
    ship_key = store.ship_key() if setting else None
    return [
        (change, with_password(ship_key, change.fields) if change.key == "users" else change.fields)
        for change in changes
    ]


def store_key_slots(store: ServerStore, slots: dict[str, tuple[str, str]]) -> int:
    """Store key slots made at sign-in for users whose password predates key slots
    (docs/security.md): ``slots`` maps a username to ``(verifier, slot)``, the verifier the
    password was checked against and the slot made from that password. One write
    transaction, each slot stored like an office edit (journaled: devices sync it); a user
    gone meanwhile, given a slot already or whose verifier changed (the office set a new
    password) is left as is. Returns the cursor after it."""
    with store.write() as cur:
        for username, (verifier, slot) in slots.items():
            user = _row(cur, "users", username)
            if user is not None and not user["key_slot"] and user["password_hash"] == verifier:
                _set(store, cur, "users", username, {"key_slot": slot})
        return _commit_seq(cur)


def replace_picture(store: ServerStore, profile_id: str, jpeg: bytes) -> int:
    """Give profile ``profile_id`` the portrait ``jpeg``; returns the cursor after it.

    The old portrait is deleted, the new one added, and the reservation's
    ``picture_sha256`` changes; the profile's own portrait sent again changes nothing.
    Raises EditRejected for an unknown profile, another profile's portrait (portraits are
    content-addressed), an oversize file (over ``PICTURE_MAX_BYTES``) or bytes that are not
    a JPEG image.
    """
    _check_jpeg(jpeg)
    sha256 = hashlib.sha256(jpeg).hexdigest()
    with store.write() as cur:
        if _row(cur, "reservations", profile_id) is None:
            raise EditRejected(f"no reservation {profile_id!r}")
        owner = scalar(cur, "SELECT profile_id FROM pictures WHERE sha256 = $1", [sha256])
        if owner == profile_id:  # sent again: nothing changes
            return latest_seq(cur)
        if owner is not None:  # portraits are content-addressed: one profile each
            raise EditRejected(f"this picture is already the portrait of profile {owner!r}")
        for (old,) in cur.execute(
            "SELECT sha256 FROM pictures WHERE profile_id = $1", [profile_id]
        ).fetchall():
            _delete(store, cur, "pictures", old)
        store.portraits.write(sha256, jpeg, durable=True)  # on disk before its row commits
        seq = _journal(cur, "pictures", sha256, "set")
        cur.execute(
            "INSERT INTO pictures (sha256, profile_id, _seq) VALUES ($1, $2, $3)", [sha256, profile_id, seq]
        )
        _set(store, cur, "reservations", profile_id, {"picture_sha256": sha256})
        return _commit_seq(cur)


def _check_jpeg(jpeg: bytes) -> None:
    if len(jpeg) > PICTURE_MAX_BYTES:
        raise EditRejected(f"picture is {len(jpeg)} bytes; at most {PICTURE_MAX_BYTES} allowed")
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if image.format != "JPEG":
                raise EditRejected(f"picture is {image.format}, not JPEG")
            image.load()  # a full decode: verify() lets a truncated file through
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise EditRejected("picture is not a readable JPEG image") from exc


def _journal(cur: Any, key: str, record_id: str, op: str) -> int:
    """Draw the next change sequence value for ``op`` on a record and journal it."""
    seq = int(scalar(cur, "SELECT nextval('change_seq')"))  # type: ignore[call-overload]
    now = datetime.now(UTC).replace(tzinfo=None)
    cur.execute("INSERT INTO journal VALUES ($1, $2, $3, $4, $5)", [seq, key, record_id, op, now])
    return seq


def _commit_seq(cur: Any) -> int:
    """Make this transaction's last sequence value the committed ``last_seq``; return it."""
    cur.execute("UPDATE server_meta SET last_seq = (SELECT max(_seq) FROM journal)")
    return int(scalar(cur, "SELECT last_seq FROM server_meta"))  # type: ignore[call-overload]


def _columns(key: str) -> list[str]:
    if key not in DATASET_COLUMNS:
        raise EditRejected(f"unknown dataset {key!r}")
    return [name for name, _ in DATASET_COLUMNS[key]]


def _row(cur: Any, key: str, record_id: str) -> dict[str, Any] | None:
    columns = _columns(key)
    select = ", ".join(f'"{c}"' for c in columns)
    row = first_row(cur, f'SELECT {select} FROM "{key}" WHERE "{id_column(key)}" = $1', [record_id])
    return dict(zip(columns, row, strict=True)) if row else None


def _set(store: ServerStore, cur: Any, key: str, record_id: str, fields: dict[str, Any]) -> None:
    columns = _columns(key)
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise EditRejected(f"{key} has no field(s) {unknown}")
    if key == "pictures":
        raise EditRejected("portraits are replaced through the picture endpoint")
    if id_column(key) in fields and fields[id_column(key)] != record_id:
        raise EditRejected(f"the id field {id_column(key)!r} cannot be changed")
    existing = _row(cur, key, record_id)
    if key == "parameters" and "value" in fields:
        declared = fields.get("type") or (existing or {}).get("type")
        fields = fields | {"value": _parameter_value(record_id, declared, fields["value"])}
    for name, value in fields.items():
        _check_value(key, name, value)
    row = (existing or dict.fromkeys(columns)) | fields | {id_column(key): record_id}
    missing = [name for name in REQUIRED.get(key, ()) if row[name] in (None, "")]
    if missing:
        raise EditRejected(f"{key} {record_id!r} needs a value for {missing}")
    _check_references(cur, key, row)
    seq = _journal(cur, key, record_id, "set")
    cur.execute(f'DELETE FROM "{key}" WHERE "{id_column(key)}" = $1', [record_id])
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 2))
    try:
        # Columns named: a column a migration added stands after _seq in an older store.
        names = ", ".join(f'"{c}"' for c in (*columns, "_seq"))
        cur.execute(f'INSERT INTO "{key}" ({names}) VALUES ({marks})', [*(row[c] for c in columns), seq])
    except store.Error as exc:
        reason = str(exc).splitlines()[0]  # DuckDB appends the statement; keep the reason
        raise EditRejected(f"{key} {record_id!r}: a value does not fit its field: {reason}") from exc


def _check_unnamed(cur: Any, key: str, record_id: str) -> None:
    """Raise StillNamed when profiles or general parameters name record ``record_id`` of ``key``."""
    profiles = sum(
        int(scalar(cur, f'SELECT count(*) FROM reservations WHERE "{name}" = $1', [record_id]))  # type: ignore[call-overload]
        for (source, name), target in REFERENCES.items()
        if source == "reservations" and target == key
    )
    names = [name for name, target in PARAMETER_REFERENCES.items() if target == key]
    parameters = [
        name
        for name in names
        if scalar(cur, "SELECT value FROM parameters WHERE name = $1", [name]) == record_id
    ]
    if profiles or parameters:
        named_by = [f"{profiles} profile(s)"] if profiles else []
        named_by += [f"general parameter {name}" for name in parameters]
        raise StillNamed(f"{key} {record_id!r} is still named by {' and '.join(named_by)}")


def _delete(store: ServerStore, cur: Any, key: str, record_id: str) -> None:
    """Delete the record and journal its tombstone; a profile's portrait goes with it, and a
    portrait's file once the write commits."""
    _columns(key)
    _check_unnamed(cur, key, record_id)
    gone = cur.execute(
        f'DELETE FROM "{key}" WHERE "{id_column(key)}" = $1 RETURNING 1', [record_id]
    ).fetchall()
    if not gone:
        raise EditRejected(f"no {key} record {record_id!r}")
    _journal(cur, key, record_id, "delete")
    if key == "pictures":
        store.unnamed(record_id)
    if key == "reservations":
        for (sha256,) in cur.execute(
            "SELECT sha256 FROM pictures WHERE profile_id = $1", [record_id]
        ).fetchall():
            _delete(store, cur, "pictures", sha256)
