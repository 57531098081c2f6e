"""Injectable time (DESIGN.md: time is injectable so tests never sleep).

Sync logic never uses the device clock to decide what to fetch (invariant 1); the clock
only stamps what the device shows ("last full sync at ...").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of aware UTC datetimes and monotonic seconds."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


class FrozenClock:
    """A clock that stands still until told to move: for tests and snapshots."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at
        self._mono = 0.0

    def now(self) -> datetime:
        """The frozen time."""
        return self._at

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self._at += timedelta(seconds=seconds)
        self._mono += seconds
