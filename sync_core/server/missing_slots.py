"""Key slots for users whose password predates them (a store made before key slots): made at
the user's next good sign-in (docs/security.md, "Key slots: their cost").

The device needs its user's slot in the sign-in's answer to open its data, so the slot is
derived there and then, from the password just verified, on the verification worker that
checked it: like the verifications, at most one derivation per worker at a time (19 MiB
each), and counted in the pool's pace. Storing it is off the answer's path: one background
writer stores the slots made meanwhile in one write transaction, so a burst of such sign-ins
costs a few transactions, not one each. A slot not stored (the server stopped first, or the
write failed) is made again at the user's next sign-in.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sync_core.key_slots import make_slot
from sync_core.server.edits import store_key_slots
from sync_core.server.store import ServerStore, ServerUser

log = logging.getLogger(__name__)


class MissingSlots:
    """Makes the missing key slots of users signing in to ``store`` and stores them in the
    background (see the module). Safe to use from several threads."""

    def __init__(self, store: ServerStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, str]] = {}  # username -> (verifier, slot)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="key-slots")

    def given(self, user: ServerUser, password: str) -> ServerUser:
        """``user``, whose ``password`` was just verified, with a key slot: theirs, else one
        made now (one argon2id derivation, about 21 ms) and queued for the store. Unchanged
        when the store has no ship data key."""
        if user.key_slot is not None:
            return user
        ship_key = self.store.ship_key()
        if ship_key is None:
            return user
        slot = make_slot(password, ship_key)
        with self._lock:
            idle = not self._pending
            self._pending[user.username] = (user.password_hash, slot)
        if idle:  # else the write queued already takes this slot too
            self._writer.submit(self._write)
        return replace(user, key_slot=slot)

    def close(self) -> None:
        """Store the slots still queued, then stop the writer (server shutdown)."""
        self._writer.shutdown(wait=True)

    def _write(self) -> None:
        with self._lock:
            slots, self._pending = self._pending, {}
        try:
            store_key_slots(self.store, slots)
        except Exception:  # noqa: BLE001 - each is made again at its user's next sign-in
            log.exception("%d key slot(s) made at sign-in were not stored", len(slots))
        else:
            log.info("%d key slot(s) made at sign-in stored", len(slots))
