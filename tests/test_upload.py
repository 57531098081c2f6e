"""Uploading the outbox to the real server: exactly once in effect, per-item failures,
backoff, and registrations queued during an upload (docs/architecture.md,
'Every registration is uploaded exactly once')."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from pathlib import Path

import duckdb
import httpx
import pytest

from sync_core.clock import FrozenClock
from sync_core.device.registrar import Result
from sync_core.device.upload import BACKOFF_CAP, Uploader
from sync_core.protocol import SyncState
from sync_core.server.process import ServerProcess
from tests.faults import FaultyTransport
from tests.registering import (
    NOW,
    REGISTRATIONS,
    Network,
    onboard_cards,
    register_all,
    server_registered,
    synced_device,
)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_an_answer_lost_after_the_commit_is_retried_and_applied_once(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    cards = onboard_cards(ship_dir)
    station = cards[0][2]
    cards = onboard_cards(ship_dir, station, 3)
    network = Network()
    async with synced_device(own_server, device_store_path, station, network) as device:
        await register_all(device, cards)
        network.drop_next_answer = True
        first = await device.uploader.drain()
        assert (first.status, first.pending) == (SyncState.NOT_STARTED, 3)
        assert "dropped" in (first.error or "")
        second = await device.uploader.drain()
        assert (second.status, second.pending, second.sent) == (SyncState.SUCCESS, 0, 3)
    assert network.uploads == [3, 3]
    assert await server_registered(own_server, station) == 3


def _fail_items(profile_id: str, refused_id: str) -> FaultyTransport:
    """The server's first receipt with ``profile_id``'s item turned into a 500 (the server
    did store it; the retry then hears "already applied") and ``refused_id``'s into a 422
    (the server refuses only items that are not valid registrations, which this device
    never sends, so the refusal is injected)."""
    state = {"failed": False}

    def rewrite(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
        if request.url.path != REGISTRATIONS or state["failed"]:
            return None
        sent = {
            item["registration_id"]: item["profile_id"]
            for item in json.loads(request.content)["registrations"]
        }
        receipt = json.loads(body)
        for result in receipt["results"]:
            if sent[result["registration_id"]] == profile_id:
                result.update(outcome="error", status=500, reason="database busy (test)")
                state["failed"] = True
            elif sent[result["registration_id"]] == refused_id:
                result.update(outcome="rejected", status=422, reason=f"{refused_id} refused (test)")
        return json.dumps(receipt).encode(), "application/json"

    return FaultyTransport(rewrite)


async def test_one_item_failing_500_and_one_refused_422_do_not_block_the_good_one(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = onboard_cards(ship_dir)[0][2]
    (good, _, _), (busy, busy_id, _), (gone, gone_id, _) = onboard_cards(ship_dir, station, 3)
    transport = _fail_items(busy_id, gone_id)
    async with synced_device(own_server, device_store_path, station, transport) as device:
        await register_all(device, [(good, "", ""), (busy, "", ""), (gone, "", "")])
        first = await device.uploader.drain()
        assert (first.status, first.pending, first.sent, first.failed) == (SyncState.FAILED, 1, 1, 1)
        assert device.uploader.failures == 1
        second = await device.uploader.drain()
        assert (second.pending, second.sent, second.failed) == (0, 2, 1)
        # refused in the first upload: listed with the reason, not failing every later upload
        assert second.status is SyncState.SUCCESS
        assert [refusal.profile_id for refusal in second.refused] == [gone_id]
        with device.store.db.cursor() as cur:
            reasons = cur.execute(
                "SELECT failed_reason FROM registrations WHERE upload_state = 'failed'"
            ).fetchall()
        assert len(reasons) == 1 and reasons[0][0]


async def test_a_registration_made_during_an_upload_follows_right_after_it(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = onboard_cards(ship_dir)[0][2]
    first_card, second_card = onboard_cards(ship_dir, station, 2)
    network = Network()
    network.release = asyncio.Event()
    async with synced_device(own_server, device_store_path, station, network) as device:
        running = asyncio.create_task(device.uploader.run())
        try:
            await register_all(device, [first_card])
            while device.uploader.status.status is not SyncState.IN_PROGRESS:
                await asyncio.sleep(0.01)
            await register_all(device, [second_card])  # while the first upload is held
            network.release.set()
            async with asyncio.timeout(5):  # no clock advance: no timer involved
                while device.uploader.status.sent < 2:
                    await asyncio.sleep(0.01)
        finally:
            await _stop(running)
    assert sum(network.uploads) == 2
    assert await server_registered(own_server, station) == 2


async def test_registrations_made_offline_reach_the_server_within_10_s_of_going_online(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = onboard_cards(ship_dir)[0][2]
    cards = onboard_cards(ship_dir, station, 5)
    network = Network()
    async with synced_device(own_server, device_store_path, station, network) as device:
        network.down = True
        running = asyncio.create_task(device.uploader.run())
        try:
            await register_all(device, cards)
            for _ in range(30):  # a long outage: the backoff reaches its cap
                device.clock.advance(BACKOFF_CAP)
                await asyncio.sleep(0.02)
            assert device.uploader.status.pending == 5
            assert device.uploader.status.status is SyncState.NOT_STARTED  # offline: the product's word
            network.down = False
            waited = 0
            while device.uploader.status.sent < 5 and waited < 10:
                device.clock.advance(1)
                waited += 1
                await asyncio.sleep(0.1)
        finally:
            await _stop(running)
        assert device.uploader.status.sent == 5, f"not all uploaded {waited} s after going online"
    assert await server_registered(own_server, station) == 5


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    uploader = Uploader(None, None, FrozenClock(NOW), "s", lambda _: None, rng=random.Random(1))  # type: ignore[arg-type]
    for failures in range(1, 8):
        uploader.failures = failures
        ceiling = min(BACKOFF_CAP, 2 ** (failures - 1))
        delays = [uploader.backoff() for _ in range(50)]
        assert 0.5 * ceiling <= min(delays) < max(delays) <= ceiling


@pytest.mark.parametrize("handling", ["1", "3"])
async def test_wrong_station_follows_the_assembly_handling_mode(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path, handling: str
) -> None:
    home = onboard_cards(ship_dir, count=1)[0]
    (away,) = duckdb.sql(
        f"SELECT board_card_number FROM '{ship_dir}/reservations.parquet' "
        f"WHERE muster_station <> '{home[2]}' AND movement_status = 'Onboard' LIMIT 1"
    ).fetchall()
    async with synced_device(own_server, device_store_path, home[2]) as device:
        device.registrar.handling = type(device.registrar.handling)(int(handling))
        outcome = await device.registrar.scan(away[0])
    expected = Result.REGISTERED if handling == "1" else Result.REFUSED
    assert outcome.result is expected
