"""Injectable time, so tests never sleep.

Sync logic never uses the device clock to decide what to fetch (docs/architecture.md, 'Server
sequence, not device time'); the clock stamps what the device shows ("last full sync at ...") and
schedules the delta timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """A source of aware UTC datetimes, monotonic seconds, and sleep."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


async def within(clock: Clock, seconds: float, work: Awaitable[T]) -> T:
    """``work``'s result, or TimeoutError once ``seconds`` pass on ``clock`` first.

    Whichever side loses is cancelled and awaited before this returns, so no task outlives
    the call; an error raised by ``work`` propagates.
    """
    task = asyncio.ensure_future(work)
    alarm = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((task, alarm), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (task, alarm):
            waiting.cancel()
        await asyncio.gather(task, alarm, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()


async def wait_for_event_or_sleep(event: asyncio.Event, clock: Clock, seconds: float | None) -> bool:
    """Wait until ``event`` is set (True) or ``seconds`` pass on ``clock`` (False).

    ``seconds=None`` waits for the event alone. Leaves no task behind (see :func:`within`).
    """
    if seconds is None:
        await event.wait()
        return True
    try:
        await within(clock, seconds, event.wait())
    except TimeoutError:
        return False
    return True


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


class FrozenClock:
    """A clock that stands still until :meth:`advance` moves it: for tests and snapshots.

    Sleepers wake when ``advance`` reaches their deadline, so timer tests never sleep.
    """

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        """The frozen time."""
        return self._at

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._mono

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced ``seconds`` past now."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, waiter))
        try:
            await waiter
        finally:
            self._sleepers = [(due, w) for due, w in self._sleepers if w is not waiter]

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` and wake the sleepers now due."""
        self._at += timedelta(seconds=seconds)
        self._mono += seconds
        for due, waiter in self._sleepers:
            if due <= self._mono and not waiter.done():
                waiter.set_result(None)
