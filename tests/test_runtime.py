"""The device runtime without Textual, against the real server app in-process: sessions,
connectivity reactions, the session timeout, sign-out, the retention wipe and the one
published device state."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from pathlib import Path

from sync_core.device import DeviceStore
from sync_core.device.registrar import Post, Result
from sync_core.device.runtime import TIMED_OUT, DeviceState
from sync_core.protocol import API_PREFIX, SafetyMode, SyncState
from tests.registering import NOW, onboard_cards
from tests.ship_world import Ship, registering, running, until

REGISTRATIONS = f"{API_PREFIX}/registrations"


async def _synced(ship: Ship, device: DeviceStore) -> None:
    """A first runtime signs in and full-syncs ``device``, then stops."""
    async with running(ship.runtime(device)) as runtime:
        signed_in = await runtime.sign_in("demo", "demo")
        assert signed_in.first_sync and signed_in.session.server_id is not None
        status = await runtime.sync_now(signed_in.session.server_id)
        assert status.status is SyncState.SUCCESS


async def test_one_state_carries_mode_session_and_sync(ship: Ship, device: DeviceStore) -> None:
    states: list[DeviceState] = []
    runtime = ship.runtime(device)
    runtime.subscribe(states.append)
    async with running(runtime):
        await until(lambda: runtime.state.connectivity is not None)
        assert runtime.state.online and runtime.state.mode_since == NOW
        await runtime.sign_in("demo", "demo")
        session = runtime.state.session
        assert session is not None and session.online
        assert runtime.state.counts_live(NOW)
        assert not runtime.state.counts_live(NOW + timedelta(seconds=10))
        await runtime.sync_now(session.server_id or "")
        assert runtime.state.sync.status is SyncState.SUCCESS
    assert [state.sync.status for state in states].count(SyncState.IN_PROGRESS) >= 1


async def test_going_online_signs_an_offline_session_in_uploads_and_syncs(
    ship: Ship, device: DeviceStore, ship_dir: Path
) -> None:
    await _synced(ship, device)
    ship.link.down = True
    runtime = ship.runtime(device)
    async with running(runtime):
        await until(lambda: runtime.state.connectivity is not None)
        assert not runtime.state.online
        signed_in = await runtime.sign_in("demo", "demo")
        assert not signed_in.session.online
        station = onboard_cards(ship_dir, count=1)[0][2]
        registrar = await runtime.registrar(Post("demo", SafetyMode.GENASS, station, ship.clock, UTC))
        for card, _, _ in onboard_cards(ship_dir, station, 3):
            assert (await registrar.scan(card)).result is Result.REGISTERED
        assert runtime.state.sync.upload.pending == 0  # nothing uploads offline: not counted yet

        ship.link.down = False
        await runtime.monitor.check()
        await until(lambda: runtime.session is not None and runtime.session.online)
        await until(lambda: runtime.state.sync.upload.sent == 3)
        await runtime.idle()
        assert runtime.state.sync.kind == "delta" and runtime.state.sync.status is SyncState.SUCCESS
        assert runtime.state.online and runtime.state.mode_since == NOW


async def test_going_offline_shows_the_upload_not_started(ship: Ship, device: DeviceStore) -> None:
    await _synced(ship, device)
    runtime = ship.runtime(device)
    async with running(runtime):
        await runtime.sign_in("demo", "demo")
        await until(lambda: runtime.state.sync.upload.status is not SyncState.IN_PROGRESS)
        runtime.engine.show_upload(runtime.state.sync.upload.model_copy(update={"status": SyncState.FAILED}))
        ship.link.down = True
        for _ in range(2):
            await runtime.monitor.check()
        assert not runtime.state.online
        assert runtime.state.sync.upload.status is SyncState.NOT_STARTED


async def test_a_session_times_out_and_says_so(ship: Ship, device: DeviceStore) -> None:
    await _synced(ship, device)
    runtime = ship.runtime(device)
    async with running(runtime):
        await runtime.sign_in("demo", "demo")
        minutes = int(device.parameter("session_timeout_minutes") or 15)
        ship.clock.advance(60 * (minutes - 1))
        runtime.check_session_timeout()
        await runtime.idle()
        assert runtime.session is not None
        ship.clock.advance(60)
        runtime.check_session_timeout()
        await runtime.idle()
        assert runtime.session is None and runtime.state.ended == TIMED_OUT
        assert runtime.uploader is None and runtime.client.token is None


async def test_sign_out_uploads_first_and_says_what_still_waits(
    ship: Ship, device: DeviceStore, ship_dir: Path
) -> None:
    await _synced(ship, device)
    runtime = ship.runtime(device)
    async with running(runtime):
        registrar, station = await registering(runtime, ship_dir)
        cards = onboard_cards(ship_dir, station, 2)
        await registrar.scan(cards[0][0])
        assert await runtime.sign_out() == 0
        assert runtime.state.ended is None and ship.link.requests[REGISTRATIONS] == 1

        await runtime.sign_in("demo", "demo")
        registrar = await runtime.registrar(Post("demo", SafetyMode.GENASS, station, ship.clock, UTC))
        ship.link.down = True
        await registrar.scan(cards[1][0])
        assert await runtime.sign_out() == 1
        assert runtime.state.ended == "Kept, waiting for upload: 1 registration"


async def test_the_retention_wipe_runs_at_start(ship: Ship, device: DeviceStore) -> None:
    await _synced(ship, device)
    ship.clock.advance(int(device.parameter("retention_days") or 10) * 86400)
    runtime = ship.runtime(device)
    async with running(runtime):
        assert runtime.state.wipe is not None and device.sync_point() is None


async def test_the_retention_wipe_runs_every_hour_and_ends_the_session(
    ship: Ship, device: DeviceStore
) -> None:
    await _synced(ship, device)
    days = int(device.parameter("retention_days") or 10)
    runtime = ship.runtime(device)
    async with running(runtime):
        await runtime.sign_in("demo", "demo")
        assert runtime.state.wipe is None
        ship.clock.advance(days * 86400)
        await until(lambda: runtime.state.wipe is not None)
        assert runtime.session is None and device.sync_point() is None


async def test_sync_now_offline_fails_at_once_saying_why(ship: Ship, device: DeviceStore) -> None:
    await _synced(ship, device)
    runtime = ship.runtime(device)
    async with running(runtime):
        session = (await runtime.sign_in("demo", "demo")).session
        ship.link.down = True
        for _ in range(2):
            await runtime.monitor.check()
        status = await runtime.sync_now(session.server_id or "")
        assert status.status is SyncState.FAILED and status.error is not None
        assert status.error.startswith("The device is offline (network down:")
        assert runtime.state.sync.error == status.error


async def test_counts_from_a_stalled_server_give_up_and_say_since_when(
    ship: Ship, device: DeviceStore, ship_dir: Path
) -> None:
    await _synced(ship, device)
    runtime = ship.runtime(device)
    async with running(runtime):
        registrar, _ = await registering(runtime, ship_dir)
        await until(lambda: runtime.state.server_answered_at is not None)
        assert (await registrar.counts()).live
        ship.link.freeze()  # online by every probe so far, but nothing answers
        asking = asyncio.create_task(registrar.counts())
        await asyncio.sleep(0.05)
        ship.clock.advance(3)  # the interactive deadline on the device's clock
        counts = await asyncio.wait_for(asking, 5)
        assert not counts.live and counts.since == NOW
        ship.clock.advance(10)  # no answer for 10 s: the device's own counts, at once
        counts = await asyncio.wait_for(registrar.counts(), 1)
        assert not counts.live and counts.since == NOW
        ship.link.freeze(False)
