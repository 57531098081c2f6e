"""Registrations uploaded by devices: each item checked alone, the good ones applied in bulk.

A batch (``POST /api/v1/registrations``) is answered item by item (docs/architecture.md,
'Every registration is uploaded exactly once' and 'Bad input fails alone'):

- an item without a usable ``registration_id`` cannot be named, so it gets no result (the
  device keeps it: only a result naming an item takes it out of the outbox);
- an item that is not a valid :class:`Registration` is REJECTED with status 422 and a short
  reason;
- an id the server already holds is ALREADY APPLIED, status 200, and changes nothing: a
  replay is harmless. An id repeated within the batch is answered as its first valid
  occurrence was, ALREADY APPLIED when that one was applied;
- every other item is APPLIED, status 200, even when its profile, muster station or
  lifeboat is not (or no longer) in the ship's data: a registration records what happened
  at the muster, so it is never refused for reference data (the office may have deleted the
  profile meanwhile). The server's status page counts such registrations
  (:func:`orphan_counts`).

The new items go in with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from an Arrow
table: an id the log holds already (a replay after a lost answer) is skipped by the primary
key, with no scan of the log. The uploads that arrive together are written in one
transaction (:mod:`sync_core.server.group_commit`): one commit, one wait for the disk, for
all of them. An id sent by two uploads of the same group is applied for the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from sync_core.muster import REGISTRATION_COLUMNS
from sync_core.protocol import ItemOutcome, Registration, RegistrationReceipt
from sync_core.server.group_commit import GroupCommit
from sync_core.server.store import ServerStore

# An id longer than this is not one a device made (UUIDv7: 36); it is not echoed back.
NAME_MAX = 64
REASON_MAX = 200
_STAMPS = ("received_at", "uploaded_by")
_INCOMING = pa.schema(
    [
        (name, pa.timestamp("us") if name in ("registered_utc", "received_at") else pa.string())
        for name in (*REGISTRATION_COLUMNS, *_STAMPS)
    ]
)
_COPIED = [name for name in REGISTRATION_COLUMNS if name not in ("registered_at", "registered_utc")]
_COLUMN_LIST = ", ".join((*REGISTRATION_COLUMNS, *_STAMPS))
_INSERT_SQL = (
    f"INSERT INTO registrations ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming "
    "ON CONFLICT (registration_id) DO NOTHING RETURNING registration_id"
)
# Registrations whose profile, or whose place (muster station; lifeboat in abandon ship),
# is not in the ship's data.
_ORPHANS_SQL = (
    "SELECT count(*) FILTER (WHERE profile_id NOT IN (SELECT profile_id FROM reservations)), "
    "count(*) FILTER (WHERE CASE WHEN lifeboat IS NULL "
    "THEN muster_station NOT IN (SELECT code FROM muster_stations) "
    "ELSE lifeboat NOT IN (SELECT code FROM lifeboats) END) FROM registrations"
)


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


@dataclass(frozen=True)
class _Upload:
    """The valid registrations of one upload (unique ids) and its stamps (naive UTC)."""

    registrations: list[Registration]
    uploaded_by: str
    received_at: datetime


class RegistrationLog:
    """``store``'s registrations: uploads checked item by item and applied by group commit
    (see the module). Safe to use from several threads."""

    def __init__(self, store: ServerStore) -> None:
        self.store = store
        self.commits: GroupCommit[_Upload, set[str]] = GroupCommit(self._write)

    def apply(self, items: list[Any], uploaded_by: str, received_at: datetime) -> RegistrationReceipt:
        """Check ``items`` (plain JSON values) one by one and insert the new, good ones,
        stamped ``received_at`` (aware) and ``uploaded_by`` (the signed-in user). Returns a
        result per named item, in request order (see the module's rules).

        Raises only for a store failure, in which case nothing of the batch is applied.
        """
        answers = [(name, _parse(item)) for item in items if (name := item_name(item)) is not None]
        unique: dict[str, Registration] = {}
        for name, answer in answers:
            if isinstance(answer, Registration):
                unique.setdefault(name, answer)
        at = received_at.astimezone(UTC).replace(tzinfo=None)
        applied = self.commits.submit(_Upload(list(unique.values()), uploaded_by, at)) if unique else set()
        answered: set[str] = set()
        results = []
        for name, answer in answers:
            results.append(_result(name, answer, applied_here=name not in answered and name in applied))
            answered.add(name)
        return RegistrationReceipt.model_validate({"results": results})

    def _write(self, uploads: list[_Upload]) -> list[set[str]]:
        """Insert the new registrations of ``uploads`` in one transaction; the ids each
        upload applied (an id two of them sent counts for the first)."""
        with self.store.log_write() as cur:
            self.store.with_table(cur, "incoming", _table(uploads))
            inserted = {row[0] for row in cur.execute(_INSERT_SQL).fetchall()}
        applied = []
        for upload in uploads:
            mine = {reg.registration_id for reg in upload.registrations} & inserted
            inserted -= mine
            applied.append(mine)
        return applied


def _parse(item: Any) -> Registration | str:
    """``item`` as a Registration, or the reason it is not one (pydantic's first error)."""
    try:
        return Registration.model_validate(item)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(map(str, error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        return (f"{where}: {message}" if where else message)[:REASON_MAX]


def _result(name: str, answer: Registration | str, applied_here: bool) -> dict[str, Any]:
    """One RegistrationResult as a plain dict (the receipt validates them all at once);
    ``applied_here`` when this item's insert is the one that applied its id."""
    if isinstance(answer, str):
        outcome, reason = ItemOutcome.REJECTED, answer
    elif applied_here:
        outcome, reason = ItemOutcome.APPLIED, None
    else:
        outcome, reason = ItemOutcome.ALREADY_APPLIED, None
    status = 422 if outcome is ItemOutcome.REJECTED else 200
    return {"registration_id": name, "outcome": outcome, "status": status, "reason": reason}


def orphan_counts(store: ServerStore) -> tuple[int, int]:
    """How many registrations name a profile, and how many a muster station or lifeboat,
    that the ship's data does not hold (deleted after the muster, or never known)."""
    with store.whole_ship_read() as cur:
        row = cur.execute(_ORPHANS_SQL).fetchall()[0]
    return int(row[0]), int(row[1])


def _table(uploads: list[_Upload]) -> pa.Table:
    """The registrations of ``uploads`` as an Arrow table with REGISTRATION_COLUMNS and
    their upload's stamps: ``registered_at`` as ISO 8601 text with the device's offset,
    ``registered_utc`` the same instant in UTC (naive). An id an earlier upload holds is
    left out: the first upload applies it."""
    seen: set[str] = set()
    regs: list[Registration] = []
    stamps: list[tuple[datetime, str]] = []
    for upload in uploads:
        for reg in upload.registrations:
            if reg.registration_id not in seen:
                seen.add(reg.registration_id)
                regs.append(reg)
                stamps.append((upload.received_at, upload.uploaded_by))
    columns: dict[str, Any] = {name: [getattr(reg, name) for reg in regs] for name in _COPIED}
    columns["registered_at"] = [reg.registered_at.isoformat() for reg in regs]
    instants = pa.array([reg.registered_at for reg in regs], pa.timestamp("us", tz="UTC"))
    columns["registered_utc"] = instants.cast(pa.timestamp("us"))
    columns["received_at"] = [at for at, _ in stamps]
    columns["uploaded_by"] = [by for _, by in stamps]
    return pa.table(columns, schema=_INCOMING)
