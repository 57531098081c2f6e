"""Registrations uploaded by devices: each item checked alone, the good ones applied in bulk.

A batch (``POST /api/v1/registrations``) is answered item by item (docs/architecture.md,
'Every registration is uploaded exactly once' and 'Bad input fails alone'):

- an item without a usable ``registration_id`` cannot be named, so it gets no result (the
  device keeps it: only a result naming an item takes it out of the outbox);
- an item that is not a valid :class:`Registration`, or names an unknown profile, muster
  station or lifeboat, is REJECTED with status 422 and a short reason;
- an id the server already holds is ALREADY APPLIED, status 200, and changes nothing: a
  replay is harmless. An id repeated within the batch is answered as its first valid
  occurrence was, ALREADY APPLIED when that one was applied;
- every other item is APPLIED, status 200.

The new items go in with one ``INSERT ... SELECT`` from an Arrow table, in one write
transaction. The insert is optimistic: a fresh batch (the usual upload) costs that one
statement, with no scan of the registration log; when an id is held already (a replay after
a lost answer), the primary key refuses the statement, nothing is applied, and a second
transaction looks the ids up first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from sync_core.muster import REGISTRATION_COLUMNS
from sync_core.protocol import ItemOutcome, Registration, RegistrationReceipt
from sync_core.server.store import ServerStore

# An id longer than this is not one a device made (UUIDv7: 36); it is not echoed back.
NAME_MAX = 64
REASON_MAX = 200
_INCOMING = pa.schema(
    [(name, pa.timestamp("us") if name == "registered_utc" else pa.string()) for name in REGISTRATION_COLUMNS]
)
_COPIED = [name for name in REGISTRATION_COLUMNS if name not in ("registered_at", "registered_utc")]
_COLUMN_LIST = ", ".join(REGISTRATION_COLUMNS)
# Only items whose profile is a reservation and whose place is a known muster station
# (lifeboat in abandon ship) go in; the ids that went in come back.
_INSERT_SQL = (
    f"INSERT INTO registrations ({_COLUMN_LIST}, received_at, uploaded_by) "
    f"SELECT {_COLUMN_LIST}, $1, $2 FROM incoming "
    "WHERE profile_id IN (SELECT profile_id FROM reservations) AND CASE WHEN lifeboat IS NULL "
    "THEN muster_station IN (SELECT code FROM muster_stations) "
    "ELSE lifeboat IN (SELECT code FROM lifeboats) END "
    "RETURNING registration_id"
)


@dataclass
class _Stored:
    """What the store did with a batch's valid items, by id."""

    held: set[str] = field(default_factory=set)
    applied: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)


def item_name(item: Any) -> str | None:
    """The ``registration_id`` an uploaded item can be answered by: a string of at most
    ``NAME_MAX`` characters that encodes to UTF-8; None for anything else."""
    name = item.get("registration_id") if isinstance(item, dict) else None
    if not isinstance(name, str) or not name or len(name) > NAME_MAX:
        return None
    try:
        name.encode()
    except UnicodeEncodeError:
        return None
    return name


def apply_registrations(
    store: ServerStore, items: list[Any], uploaded_by: str, received_at: datetime
) -> RegistrationReceipt:
    """Check ``items`` (plain JSON values) one by one and insert the new, good ones in one
    write transaction, stamped ``received_at`` (aware) and ``uploaded_by`` (the signed-in
    user). Returns a result per named item, in request order (see the module's rules).

    Raises only for a store failure, in which case nothing of the batch is applied.
    """
    answers = [(name, _parse(item)) for item in items if (name := item_name(item)) is not None]
    unique: dict[str, Registration] = {}
    for name, answer in answers:
        if isinstance(answer, Registration):
            unique.setdefault(name, answer)
    stored = _store(
        store, list(unique.values()), uploaded_by, received_at.astimezone(UTC).replace(tzinfo=None)
    )
    answered: set[str] = set()
    results = []
    for name, answer in answers:
        results.append(_result(name, answer, stored, first=name not in answered))
        answered.add(name)
    return RegistrationReceipt.model_validate({"results": results})


def _parse(item: Any) -> Registration | str:
    """``item`` as a Registration, or the reason it is not one (pydantic's first error)."""
    try:
        return Registration.model_validate(item)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(map(str, error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        return (f"{where}: {message}" if where else message)[:REASON_MAX]


def _result(name: str, answer: Registration | str, stored: _Stored, first: bool) -> dict[str, Any]:
    """One RegistrationResult as a plain dict (the receipt validates them all at once)."""
    if isinstance(answer, str):
        outcome, reason = ItemOutcome.REJECTED, answer
    elif name in stored.applied:
        outcome, reason = (ItemOutcome.APPLIED if first else ItemOutcome.ALREADY_APPLIED), None
    elif name in stored.held:
        outcome, reason = ItemOutcome.ALREADY_APPLIED, None
    else:
        outcome, reason = ItemOutcome.REJECTED, stored.refused[name]
    status = 422 if outcome is ItemOutcome.REJECTED else 200
    return {"registration_id": name, "outcome": outcome, "status": status, "reason": reason}


def _store(store: ServerStore, regs: list[Registration], uploaded_by: str, received_at: datetime) -> _Stored:
    """Insert ``regs`` (unique ids) that are new and name a known profile and place."""
    if not regs:
        return _Stored()
    incoming = _table(regs)
    try:
        with store.write() as cur:
            applied = _insert(cur, incoming, uploaded_by, received_at)
            return _Stored(applied=applied, refused=_refusals(cur, regs, applied))
    except duckdb.ConstraintException:
        pass  # an id is held already (a replay); that transaction applied nothing
    with store.write() as cur:
        held = _held(cur, incoming)
        fresh = incoming.filter(
            pc.invert(pc.is_in(incoming["registration_id"], pa.array(list(held), pa.string())))
        )
        applied = _insert(cur, fresh, uploaded_by, received_at)
        return _Stored(held=held, applied=applied, refused=_refusals(cur, regs, applied | held))


def _insert(
    cur: duckdb.DuckDBPyConnection, incoming: pa.Table, uploaded_by: str, received_at: datetime
) -> set[str]:
    """Insert the rows of ``incoming`` with a known profile and place; their ids.

    The Arrow table stays registered on ``cur`` until the cursor closes with its transaction
    (an aborted transaction refuses even an unregister).
    """
    cur.register("incoming", incoming)
    return {row[0] for row in cur.execute(_INSERT_SQL, [received_at, uploaded_by]).fetchall()}


def _held(cur: duckdb.DuckDBPyConnection, incoming: pa.Table) -> set[str]:
    """The ids of ``incoming`` the store holds already."""
    cur.register("incoming", incoming)
    found = cur.execute("SELECT registration_id FROM incoming JOIN registrations USING (registration_id)")
    return {row[0] for row in found.fetchall()}


def _refusals(cur: duckdb.DuckDBPyConnection, regs: list[Registration], done: set[str]) -> dict[str, str]:
    """Why each of ``regs`` not in ``done`` was not inserted: its profile or its place is unknown."""
    unknown = [reg for reg in regs if reg.registration_id not in done]
    if not unknown:
        return {}
    found = cur.execute(
        "SELECT profile_id FROM reservations WHERE list_contains($1, profile_id)",
        [[r.profile_id for r in unknown]],
    )
    known = {row[0] for row in found.fetchall()}
    return {reg.registration_id: _unknown(reg, reg.profile_id in known) for reg in unknown}


def _unknown(reg: Registration, profile_known: bool) -> str:
    if not profile_known:
        return f"no reservation has profile id {reg.profile_id!r}"
    kind = "lifeboat" if reg.safety_mode.by_lifeboat else "muster station"
    return f"there is no {kind} {reg.place!r}"


def _table(regs: list[Registration]) -> pa.Table:
    """``regs`` as an Arrow table with REGISTRATION_COLUMNS: ``registered_at`` as ISO 8601
    text with the device's offset, ``registered_utc`` the same instant in UTC (naive)."""
    columns: dict[str, Any] = {name: [getattr(reg, name) for reg in regs] for name in _COPIED}
    columns["registered_at"] = [reg.registered_at.isoformat() for reg in regs]
    instants = pa.array([reg.registered_at for reg in regs], pa.timestamp("us", tz="UTC"))
    columns["registered_utc"] = instants.cast(pa.timestamp("us"))
    return pa.table(columns, schema=_INCOMING)
