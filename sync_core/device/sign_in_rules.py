"""Sign-in lockout and session timeout: the device's rules, read from the general parameters.

The general parameters ``max_failed_sign_ins``, ``lockout_minutes`` and
``session_timeout_minutes``; the product's specification ("Offline Data Retention Period") ends a session when
it times out. When a parameter is not synced (before the first full sync) or is not a whole
number >= 1, the default here applies (the fixture ship's values).

- **Lockout**: ``max_failed_sign_ins`` failed sign-ins in a row for a username lock it for
  ``lockout_minutes``, online and offline alike. The device counts them in its store, so a
  restart does not reset them; a successful sign-in does. When a lockout ends the count
  starts afresh.
- **Session timeout**: a session with no activity for ``session_timeout_minutes`` has ended.

Times are aware datetimes from the device clock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sync_core.device.store import DeviceStore
from sync_core.errors import SignInLocked
from sync_core.muster import (
    DEFAULT_LOCKOUT_MINUTES,
    DEFAULT_MAX_FAILED_SIGN_INS,
    LOCKOUT_MINUTES,
    MAX_FAILED_SIGN_INS,
)

SESSION_TIMEOUT_MINUTES = "session_timeout_minutes"
DEFAULT_SESSION_TIMEOUT_MINUTES = 15


def ensure_unlocked(store: DeviceStore, username: str, now: datetime) -> None:
    """Raise SignInLocked (with the minutes left, rounded up) while ``username`` is locked."""
    until = store.locked_until(username)
    if until is not None and until > now:
        raise SignInLocked(username, math.ceil((until - now).total_seconds() / 60))


def count_failure(store: DeviceStore, username: str, now: datetime) -> SignInLocked | None:
    """Count a refused sign-in of ``username``; returns the SignInLocked to raise when this
    failure locked it, else None."""
    limit = store.whole_parameter(MAX_FAILED_SIGN_INS, DEFAULT_MAX_FAILED_SIGN_INS)
    minutes = store.whole_parameter(LOCKOUT_MINUTES, DEFAULT_LOCKOUT_MINUTES)
    if store.count_failed_sign_in(username, limit, now + timedelta(minutes=minutes)):
        return SignInLocked(username, minutes)
    return None


def count_success(store: DeviceStore, username: str, now: datetime) -> None:
    """A successful sign-in: ``username``'s failures are forgotten and the device is in use
    at ``now`` (the retention count restarts)."""
    store.clear_failed_sign_ins(username)
    store.touch(now)


def session_expired(last_activity: datetime, now: datetime, store: DeviceStore) -> bool:
    """True when ``session_timeout_minutes`` (default 15) or more have passed since
    ``last_activity``."""
    minutes = store.whole_parameter(SESSION_TIMEOUT_MINUTES, DEFAULT_SESSION_TIMEOUT_MINUTES)
    return now - last_activity >= timedelta(minutes=minutes)
