"""The delta timer on a fake clock: due at completion + N minutes, reset by Sync Now, N from
the general parameter at the next cycle. Real server, no sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine, SyncStatus
from sync_core.device.session import sign_in
from sync_core.device.timer import DeltaTimer
from sync_core.muster import WHOLE_PARAMETER_MAX
from sync_core.protocol import RecordChange, SyncState
from sync_core.server.process import ServerProcess

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Runs:
    """Counts finished runs by kind and lets a test wait for the next one."""

    def __init__(self, engine: SyncEngine) -> None:
        self.finished: list[SyncStatus] = []
        self._changed = asyncio.Event()
        engine.subscribe(self._seen)

    def _seen(self, status: SyncStatus) -> None:
        if not status.running:
            self.finished.append(status)
            self._changed.set()

    async def next(self) -> SyncStatus:
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout=30)
        return self.finished[-1]

    async def none_within_a_moment(self) -> bool:
        """True when no run starts or finishes while the loop idles briefly."""
        before = len(self.finished)
        for _ in range(20):
            await asyncio.sleep(0)
        return len(self.finished) == before


@asynccontextmanager
async def synced_device(url: str, path: Path, clock: FrozenClock) -> AsyncIterator[tuple[SyncEngine, str]]:
    """An engine on a fresh device store after its first (full) sync, and the server id."""
    store = DeviceStore(path)
    try:
        async with ServerClient(url) as client:
            session = await sign_in(client, store, "demo", "demo")
            engine = SyncEngine(store, client, clock)
            await engine.sync(session.server_id)
            yield engine, session.server_id
    finally:
        store.close()


@asynccontextmanager
async def timer_running(engine: SyncEngine, server_id: str) -> AsyncIterator[None]:
    """The delta timer in a task for the block's duration."""
    task = asyncio.create_task(DeltaTimer(engine, server_id).run())
    try:
        yield
    finally:
        task.cancel()


async def test_timer_follows_completion_sync_now_and_the_parameter(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    clock = FrozenClock(T0)
    async with synced_device(own_server.url, device_store_path, clock) as (engine, server_id):
        assert engine.status.kind == "full" and engine.status.next_delta_due == T0 + timedelta(minutes=30)
        runs = Runs(engine)
        async with timer_running(engine, server_id):
            clock.advance(30 * 60 - 1)
            assert await runs.none_within_a_moment()
            clock.advance(1)
            delta = await runs.next()
            assert delta.kind == "delta" and delta.status is SyncState.SUCCESS
            assert delta.last_delta_sync == T0 + timedelta(minutes=30)

            clock.advance(10 * 60)  # Sync Now at 08:40 restarts the count
            sync_now = await engine.sync(server_id, full=True)
            assert sync_now.next_delta_due == T0 + timedelta(minutes=70)
            clock.advance(29 * 60)
            assert await runs.none_within_a_moment()

            async with ServerClient(own_server.url) as office:
                await office.sign_in("office", "office")
                change = RecordChange(
                    key="parameters", id="delta_sync_interval_minutes", op="set", fields={"value": "5"}
                )
                await office.post_changes([change])
            clock.advance(60)
            delta = await runs.next()
            assert delta.kind == "delta" and delta.datasets["parameters"].changes == 1
            assert delta.next_delta_due == T0 + timedelta(minutes=75)
            clock.advance(5 * 60)
            assert (await runs.next()).last_delta_sync == T0 + timedelta(minutes=75)


async def test_a_failed_run_is_retried_soon_not_in_a_loop(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    clock = FrozenClock(T0)
    async with synced_device(own_server.url, device_store_path, clock) as (engine, server_id):
        runs = Runs(engine)
        own_server.kill()
        async with timer_running(engine, server_id):
            clock.advance(30 * 60)
            failed = await runs.next()
            assert failed.status is SyncState.FAILED
            assert failed.next_delta_due == T0 + timedelta(minutes=31)
            assert await runs.none_within_a_moment()


async def test_an_absurd_interval_is_capped_and_the_device_keeps_working(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    clock = FrozenClock(T0)
    async with synced_device(own_server.url, device_store_path, clock) as (engine, server_id):
        async with ServerClient(own_server.url) as office:
            await office.sign_in("office", "office")
            minutes = "9" * 500  # the longest value the server takes: past any datetime
            change = RecordChange(
                key="parameters", id="delta_sync_interval_minutes", op="set", fields={"value": minutes}
            )
            await office.post_changes([change])
        delta = await engine.sync(server_id)
        assert delta.status is SyncState.SUCCESS, delta.error
        assert delta.next_delta_due == T0 + timedelta(minutes=WHOLE_PARAMETER_MAX)
        restarted = SyncEngine(engine.store, engine.client, clock).status
        assert restarted.next_delta_due == delta.next_delta_due
