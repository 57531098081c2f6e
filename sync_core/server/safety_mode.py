"""The ship-wide safety mode the office sets (docs/architecture.md, "Server health").

The office starts an emergency drill, a general assembly or abandon ship, and ends it; every
start and end is a row of ``safety_mode_log`` (mode NULL for an end), and the latest row is
the ship's state. The state is kept in memory between changes: every online handheld reads
it from ``/health`` every few seconds. Registrations do not depend on it: each keeps the mode
it was made in.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sync_core.duck import CachedRead, Database, aware_utc, first_row, naive_utc
from sync_core.protocol import SafetyMode, ShipSafetyMode

# set_at is naive UTC; mode NULL ends the muster under way.
_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS safety_mode_log ("
    "set_at TIMESTAMP NOT NULL, mode VARCHAR, set_by VARCHAR NOT NULL)"
)
NONE_SET = ShipSafetyMode(mode=None, since=None, set_by=None)


class ShipMode:
    """The ship's safety mode in ``db`` (creates its table); safe to use from several threads."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        with db.cursor() as cur:
            cur.execute(_LOG_DDL)
        self._current = CachedRead(self._read)

    def current(self) -> ShipSafetyMode:
        """The latest start or end (``NONE_SET`` when the office never set a mode)."""
        return self._current.get()

    def set(self, mode: SafetyMode | None, by: str, at: datetime) -> ShipSafetyMode:
        """Start ``mode`` (None: end the muster under way) as user ``by`` at ``at`` (aware)."""
        with self._lock:
            with self._db.cursor() as cur:
                cur.execute(
                    "INSERT INTO safety_mode_log VALUES (?, ?, ?)",
                    [naive_utc(at), mode.value if mode else None, by],
                )
            state = ShipSafetyMode(mode=mode, since=at, set_by=by)
            self._current.put(state)
        return state

    def _read(self) -> ShipSafetyMode:
        with self._db.cursor() as cur:
            row = first_row(
                cur, "SELECT mode, set_at, set_by FROM safety_mode_log ORDER BY set_at DESC LIMIT 1"
            )
        if row is None:
            return NONE_SET
        return ShipSafetyMode(mode=row[0], since=aware_utc(row[1]), set_by=row[2])
