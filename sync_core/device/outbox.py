"""The outbox: every registration captured on this device, and what became of its upload.

A registration is committed here before the screen confirms it (docs/architecture.md, 'Every
registration is uploaded exactly once') and stays after upload: the device keeps its own
registrations, and offline station counts are computed from them (:mod:`sync_core.muster`). Each row
is bound to the server whose data it was captured against (``server_id``) and to the user who
captured it; only that server ever receives it. Upload states:

- ``pending``: waits for upload (``attempts`` failed tries so far);
- ``sent``: the server answered applied / already applied (it left the outbox);
- ``failed``: the server refused it (a 4xx for that item); ``failed_reason`` says why.
  A Retry puts failed items back to pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sync_core.device.status import REFUSALS_SHOWN, Refusal
from sync_core.duck import Database, first_row
from sync_core.muster import REGISTRATION_COLUMNS, REGISTRATION_DDL
from sync_core.protocol import Registration

OUTBOX_DDL = REGISTRATION_DDL.format(
    extra=", server_id VARCHAR NOT NULL, upload_state VARCHAR NOT NULL DEFAULT 'pending', "
    "attempts INTEGER NOT NULL DEFAULT 0, failed_reason VARCHAR, uploaded_at TIMESTAMP"
)


class UploadState(StrEnum):
    """Where one registration stands in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxTally:
    """Registrations of one server by upload state, and the last successful upload (UTC)."""

    pending: int
    sent: int
    failed: int
    last_upload: datetime | None


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class Outbox:
    """The ``registrations`` table of the device store behind ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.cursor() as cur:
            cur.execute(OUTBOX_DDL)

    def add(self, registration: Registration, server_id: str) -> None:
        """Commit ``registration`` as pending for ``server_id`` (one insert, one commit)."""
        row = registration.model_dump(mode="json")
        values = [row[name] for name in REGISTRATION_COLUMNS if name != "registered_utc"]
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO registrations (registration_id, profile_id, action, safety_mode, "
                "muster_station, lifeboat, registered_at, username, device_id, registered_utc, server_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values, _naive_utc(registration.registered_at), server_id],
            )

    def pending(self, server_id: str, limit: int) -> list[Registration]:
        """Up to ``limit`` pending registrations of ``server_id``, oldest first."""
        names = [name for name in REGISTRATION_COLUMNS if name != "registered_utc"]
        with self.db.cursor() as cur:
            rows = cur.execute(
                f"SELECT {', '.join(names)} FROM registrations "
                "WHERE server_id = ? AND upload_state = 'pending' ORDER BY registration_id LIMIT ?",
                [server_id, limit],
            ).fetchall()
        return [Registration.model_validate(dict(zip(names, row, strict=True))) for row in rows]

    def settle(self, sent: list[str], failed: dict[str, str], retry: list[str], at: datetime) -> None:
        """Record one upload's answer in one transaction: ``sent`` ids leave the outbox,
        ``failed`` ids (id -> the server's reason) are refused for good, ``retry`` ids count
        one more failed attempt and stay pending. ``at`` is the upload's time."""
        ids = sent + list(failed) + retry
        states = [UploadState.SENT.value] * len(sent) + [UploadState.FAILED.value] * len(failed)
        states += [UploadState.PENDING.value] * len(retry)
        reasons = [None] * len(sent) + list(failed.values()) + [None] * len(retry)
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE registrations r SET upload_state = a.state, failed_reason = a.reason, "
                "attempts = r.attempts + CASE WHEN a.state = 'sent' THEN 0 ELSE 1 END, "
                "uploaded_at = CASE WHEN a.state = 'sent' THEN $1 ELSE r.uploaded_at END "
                "FROM (SELECT unnest($2::VARCHAR[]) AS registration_id, unnest($3::VARCHAR[]) AS state, "
                "unnest($4::VARCHAR[]) AS reason) a "
                "WHERE r.registration_id = a.registration_id AND r.upload_state = 'pending'",
                [_naive_utc(at), ids, states, reasons],
            )

    def requeue_failed(self, server_id: str) -> int:
        """Put ``server_id``'s refused registrations back to pending (Retry); returns how many."""
        with self.db.cursor() as cur:
            rows = cur.execute(
                "UPDATE registrations SET upload_state = 'pending', failed_reason = NULL "
                "WHERE server_id = ? AND upload_state = 'failed' RETURNING 1",
                [server_id],
            ).fetchall()
        return len(rows)

    def tally(self, server_id: str | None) -> OutboxTally:
        """Counts by upload state for ``server_id`` (None: every server, as after a
        retention wipe, when the kept registrations name servers the device forgot) and the
        last successful upload."""
        with self.db.cursor() as cur:
            row = first_row(
                cur,
                "SELECT count(*) FILTER (upload_state = 'pending'), count(*) FILTER (upload_state = 'sent'), "
                "count(*) FILTER (upload_state = 'failed'), max(uploaded_at) FROM registrations "
                "WHERE server_id = ? OR ? IS NULL",
                [server_id, server_id],
            )
        assert row is not None
        last = row[3].replace(tzinfo=UTC) if row[3] is not None else None
        return OutboxTally(pending=row[0], sent=row[1], failed=row[2], last_upload=last)

    def refusals(self, server_id: str | None, limit: int = REFUSALS_SHOWN) -> list[Refusal]:
        """The refused registrations of ``server_id`` (None: every server) with the server's
        reasons, newest first, at most ``limit``."""
        return [
            Refusal(registration_id=rid, profile_id=profile_id, reason=reason or "refused")
            for rid, profile_id, reason in self.failures(server_id, limit)
        ]

    def failures(self, server_id: str | None, limit: int = 20) -> list[tuple[str, str, str]]:
        """``(registration_id, profile_id, reason)`` of refused registrations of ``server_id``
        (None: every server), newest first."""
        with self.db.cursor() as cur:
            return cur.execute(
                "SELECT registration_id, profile_id, failed_reason FROM registrations "
                "WHERE (server_id = ? OR ? IS NULL) AND upload_state = 'failed' "
                "ORDER BY registration_id DESC LIMIT ?",
                [server_id, server_id, limit],
            ).fetchall()
