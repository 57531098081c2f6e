"""This device's standings held in memory, so that a scan asks the store only to commit its
registration (a standing query took ~2.7 ms here, of a scan's 20 ms).

A person's standing on a synced device comes from this device's own registrations (the
outbox; :func:`sync_core.muster.standing`): their latest event in a safety mode by
(``registered_utc``, ``registration_id``). ``store.view(Standings)`` gives the store's one
:class:`Standings`; it reads a safety mode's latest events once, on first use, and
:meth:`Standings.note` applies each registration committed after that.
:func:`sync_core.device.registrar.outbox_recorder` is the way registrations enter the outbox,
and it notes every one it commits. An upload changes no standing (only upload states), and
a retention wipe, which deletes uploaded registrations, is a write of the synced data
after which the store drops its views (:meth:`~sync_core.device.store.DeviceStore.view`):
the next use reads the registrations again.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sync_core.device.store import DeviceStore
from sync_core.muster import Standing
from sync_core.protocol import Registration, RegistrationAction, SafetyMode

Order = tuple[datetime, str]
"""Where an event falls among a person's events: ``registered_utc`` (naive UTC), then its id."""


class Standings:
    """The latest registration event of each person in each safety mode in ``store``,
    read per mode on first use. Thread-safe; reading a mode blocks (one query)."""

    def __init__(self, store: DeviceStore) -> None:
        self._db = store.db
        self._lock = threading.Lock()
        self._modes: dict[SafetyMode, dict[str, tuple[Order, Standing | None]]] = {}

    def load(self, mode: SafetyMode) -> dict[str, tuple[Order, Standing | None]]:
        """Read ``mode``'s latest events unless done already (blocking: one query); returns
        them by profile id. Raises ``duckdb.Error`` when the registrations cannot be read."""
        with self._lock:
            latest = self._modes.get(mode)
            if latest is None:
                latest = self._modes[mode] = self._read(mode)
            return latest

    def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None:
        """Where ``profile_id`` stands registered in ``mode``, or None (as
        :func:`sync_core.muster.standing` answers); reads ``mode`` first (:meth:`load`)."""
        found = self.load(mode).get(profile_id)
        return None if found is None else found[1]

    def note(self, registration: Registration) -> None:
        """Take in ``registration`` once the outbox has committed it."""
        rid, mode = registration.registration_id, registration.safety_mode
        order = (registration.registered_at.astimezone(UTC).replace(tzinfo=None), rid)
        standing = None
        if registration.action is RegistrationAction.REGISTER:
            place = registration.lifeboat if mode.by_lifeboat else registration.muster_station
            text = registration.model_dump(mode="json")["registered_at"]  # as the outbox stores it
            standing = Standing(place, text, registration.username, rid)  # type: ignore[arg-type]
        with self._lock:
            latest = self._modes.get(mode)
            if latest is None:  # not read yet: the read will find it
                return
            known = latest.get(registration.profile_id)
            if known is None or order > known[0]:
                latest[registration.profile_id] = (order, standing)

    def _read(self, mode: SafetyMode) -> dict[str, tuple[Order, Standing | None]]:
        place = "lifeboat" if mode.by_lifeboat else "muster_station"
        with self._db.cursor() as cur:
            rows = cur.execute(
                f"SELECT profile_id, registered_utc, registration_id, action, {place}, registered_at, "
                "username FROM registrations WHERE safety_mode = ? QUALIFY row_number() OVER "
                "(PARTITION BY profile_id ORDER BY registered_utc DESC, registration_id DESC) = 1",
                [mode.value],
            ).fetchall()
        return {
            profile_id: ((at, rid), Standing(where, text, user, rid) if action == "register" else None)
            for profile_id, at, rid, action, where, text, user in rows
        }
