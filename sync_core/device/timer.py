"""The delta timer: a delta sync every N minutes from the last successful completion.

N is the general parameter ``delta_sync_interval_minutes`` (seed: "every 30 minutes from
the last synchronization completion date/time"). The engine computes the due time after
every run (``SyncStatus.next_delta_due``), so Sync Now restarts the count and a changed
parameter applies from the next cycle; the timer only waits for that time and wakes
whenever the engine publishes a new status.
"""

from __future__ import annotations

import asyncio

from sync_core.clock import wait_for_event_or_sleep
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
                running = self.engine.status.running  # its end publishes a status: a wake
                if delay is not None and delay <= 0 and not running:
                    await self.engine.sync(self.server_id)
                    continue
                await wait_for_event_or_sleep(self._wake, self.engine.clock, None if running else delay)
        finally:
            unsubscribe()

    def _seconds_to_due(self) -> float | None:
        due = self.engine.status.next_delta_due
        return None if due is None else (due - self.engine.clock.now()).total_seconds()
