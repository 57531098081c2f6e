"""The delta timer: a delta sync every N minutes from the last successful completion.

N is the general parameter ``delta_sync_interval_minutes`` (seed: "every 30 minutes from
the last synchronization completion date/time"). The engine computes the due time after
every run (``SyncStatus.next_delta_due``), so Sync Now restarts the count and a changed
parameter applies from the next cycle; the timer only waits for that time and wakes
whenever the engine publishes a new status.
"""

from __future__ import annotations

import asyncio
import contextlib

from sync_core.device.engine import SyncEngine


class DeltaTimer:
    """Runs ``engine.sync(server_id)`` whenever ``engine.status.next_delta_due`` passes.

    :meth:`run` loops until cancelled; runs never overlap because the engine coalesces.
    """

    def __init__(self, engine: SyncEngine, server_id: str) -> None:
        self.engine = engine
        self.server_id = server_id
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Wait for each due time and sync; never returns (cancel the task to stop)."""
        unsubscribe = self.engine.subscribe(lambda _: self._wake.set())
        try:
            while True:
                self._wake.clear()
                delay = self._seconds_to_due()
                if delay is not None and delay <= 0 and not self.engine.status.running:
                    await self.engine.sync(self.server_id)
                    continue
                await self._wait(delay)
        finally:
            unsubscribe()

    def _seconds_to_due(self) -> float | None:
        due = self.engine.status.next_delta_due
        return None if due is None else (due - self.engine.clock.now()).total_seconds()

    async def _wait(self, delay: float | None) -> None:
        """Until ``delay`` seconds pass on the engine's clock, or a new status arrives."""
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._wake.wait())]
        if delay is not None and not self.engine.status.running:
            waits.append(asyncio.ensure_future(self.engine.clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
