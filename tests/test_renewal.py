"""Session renewal without a person: a device's refresh token renews an expired access
token, once for all the requests that saw it end together; revoked credentials are refused
and nothing queued is lost. Against the real server app in-process, on a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient
from sync_core.device.registrar import Result
from sync_core.errors import RenewalRefused, SessionEnded
from sync_core.protocol import API_PREFIX, RecordChange, SyncState
from tests.registering import NOW, onboard_cards
from tests.ship_world import URL, Ship, imported_store, registering, running

LIFETIME = 60.0
RENEW = f"{API_PREFIX}/session/renew"
SIGN_IN = f"{API_PREFIX}/sign-in"


@pytest.fixture
def ship(ship_dir: Path, tmp_path: Path) -> Iterator[Ship]:
    store = imported_store(ship_dir, tmp_path)
    yield Ship(store, FrozenClock(NOW), token_lifetime=LIFETIME)
    store.close()


async def test_ten_requests_that_see_the_expiry_at_once_renew_once(ship: Ship) -> None:
    async with ServerClient(URL, transport=ship.link) as client:
        signed_in = await client.sign_in("demo", "demo", device_id="handheld-1")
        assert signed_in.refresh_token is not None
        ship.clock.advance(LIFETIME + 1)
        answers = await asyncio.gather(*(client.parameter("safety_mode") for _ in range(10)))
        assert len(set(answers)) == 1
        assert client.token != signed_in.token
    assert ship.link.requests[RENEW] == 1 and ship.link.requests[SIGN_IN] == 1


async def test_a_sign_in_without_a_device_gets_no_refresh_token(ship: Ship) -> None:
    async with ServerClient(URL, transport=ship.link) as client:
        assert (await client.sign_in("demo", "demo")).refresh_token is None
        ship.clock.advance(LIFETIME + 1)
        with pytest.raises(SessionEnded) as caught:
            await client.parameter("safety_mode")
        assert not isinstance(caught.value, RenewalRefused)
    assert RENEW not in ship.link.requests


async def test_the_runtime_syncs_and_uploads_across_expiries(
    ship: Ship, device: DeviceStore, ship_dir: Path
) -> None:
    async with running(ship.runtime(device)) as runtime:
        registrar, station = await registering(runtime, ship_dir, sync=True)
        for number, (card, _, _) in enumerate(onboard_cards(ship_dir, station, 3)):
            ship.clock.advance(LIFETIME + 1)
            runtime.note_activity()
            assert (await registrar.scan(card)).result is Result.REGISTERED
            assert (await runtime.uploader.drain()).sent == number + 1  # type: ignore[union-attr]
            assert (await runtime.engine.delta_sync()).status is SyncState.SUCCESS
    assert ship.link.requests[SIGN_IN] == 1 and ship.link.requests[RENEW] >= 3


@pytest.mark.parametrize(
    "change",
    [
        RecordChange(key="users", id="demo", op="delete"),
        RecordChange(key="users", id="demo", op="set", fields={"role": "office"}),
        RecordChange(key="users", id="demo", op="set", fields={"password_hash": "$argon2id$changed"}),
    ],
    ids=["deleted", "role changed", "password changed"],
)
async def test_a_revoked_user_is_refused_renewal_and_nothing_queued_is_lost(
    ship: Ship, device: DeviceStore, ship_dir: Path, change: RecordChange
) -> None:
    async with running(ship.runtime(device)) as runtime:
        registrar, station = await registering(runtime, ship_dir, sync=True)
        async with ServerClient(URL, transport=ship.link) as office:
            await office.sign_in("office", "office")
            await office.post_changes([change])
        ship.link.down = True  # the registration waits in the outbox
        card = onboard_cards(ship_dir, station, 1)[0][0]
        assert (await registrar.scan(card)).result is Result.REGISTERED
        ship.link.down = False
        status = await runtime.engine.delta_sync()
        assert status.status is SyncState.FAILED and status.error is not None
        assert status.error.endswith("sign in again")
        upload = await runtime.uploader.drain()  # type: ignore[union-attr]
        assert upload.pending == 1 and upload.status is SyncState.FAILED
    assert ship.link.requests[RENEW] == 1
