"""`muster sync --watch` (sync_forever): one report per sync run, not per upload status."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, SyncStatus
from sync_core.device.headless import sync_forever
from sync_core.protocol import SyncState
from sync_core.server.process import ServerProcess

from .tui.helpers import SYNCED_AT


async def test_watch_reports_once_per_run(live_server: ServerProcess, device_store_path: Path) -> None:
    store = DeviceStore(device_store_path)
    reports: list[SyncStatus] = []
    clock = FrozenClock(SYNCED_AT)  # stands still: the delta timer's next run is not due
    watching = asyncio.create_task(
        sync_forever(live_server.url, store, "demo", "demo", reports.append, clock=clock)
    )
    async with asyncio.timeout(30):
        while not reports:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the uploader starts and publishes meanwhile
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    store.close()
    assert [(report.status, report.kind) for report in reports] == [(SyncState.SUCCESS, "full")]
