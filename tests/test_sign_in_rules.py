"""Sign-in lockout, online and offline, and the session timeout rule (general
parameters), against the real server with a frozen clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, sign_in
from sync_core.device.sign_in_rules import session_expired
from sync_core.errors import InvalidLogin, ServerUnreachable, SignInLocked
from sync_core.protocol import API_PREFIX, RecordChange
from sync_core.server.process import ServerProcess
from tests.registering import NOW, Network, onboard_cards, synced_device

MINUTE = timedelta(minutes=1)


class _CountingSignIns(httpx.AsyncBaseTransport):
    """The real transport, counting the sign-in requests that reach the server."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.sign_ins = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sign_ins += request.url.path == f"{API_PREFIX}/sign-in"
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def _fail(client: ServerClient, store: DeviceStore, clock: FrozenClock, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidLogin):
            await sign_in(client, store, "demo", "wrong", clock=clock)


async def test_five_failures_in_a_row_lock_the_username_online_without_asking_the_server(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    await _set_parameters(own_server, max_failed_sign_ins="10")  # the server's own lockout stays out of it
    store = DeviceStore(device_store_path)  # never synced: the device's default of 5 applies
    clock = FrozenClock(NOW)
    transport = _CountingSignIns()
    try:
        async with ServerClient(own_server.url, transport=transport) as client:
            await _fail(client, store, clock, 4)
            with pytest.raises(SignInLocked, match="try again in 15 minutes") as locking:
                await sign_in(client, store, "demo", "wrong", clock=clock)
            assert isinstance(locking.value.__cause__, InvalidLogin)
            clock.advance(14 * 60 + 1)
            with pytest.raises(SignInLocked) as locked:
                await sign_in(client, store, "demo", "demo", clock=clock)
            assert locked.value.minutes_left == 1 and transport.sign_ins == 5
            assert (await sign_in(client, store, "office", "office", clock=clock)).online
            clock.advance(59)
            assert (await sign_in(client, store, "demo", "demo", clock=clock)).online
    finally:
        store.close()


async def test_offline_the_lockout_survives_a_restart_and_ends_after_lockout_minutes(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    network = Network()
    station = onboard_cards(ship_dir)[0][2]
    async with synced_device(live_server, device_store_path, station, network) as device:
        network.down = True
        await _fail(device.client, device.store, device.clock, 4)
        with pytest.raises(SignInLocked):
            await sign_in(device.client, device.store, "demo", "wrong", clock=device.clock)
    store = DeviceStore(device_store_path)  # the app restarted
    offline = Network()
    offline.down = True
    clock = FrozenClock(NOW + 14 * MINUTE)
    try:
        async with ServerClient(live_server.url, transport=offline) as client:
            with pytest.raises(SignInLocked, match="try again in 1 minute$"):
                await sign_in(client, store, "demo", "demo", clock=clock)
            clock.advance(60)
            session = await sign_in(client, store, "demo", "demo", clock=clock)
            assert not session.online and session.username == "demo"
    finally:
        store.close()


async def test_a_successful_sign_in_restarts_the_count(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    clock = FrozenClock(NOW)
    try:
        async with ServerClient(own_server.url) as client:
            await _fail(client, store, clock, 4)
            await sign_in(client, store, "demo", "demo", clock=clock)
            await _fail(client, store, clock, 4)
            assert store.locked_until("demo") is None
            with pytest.raises(SignInLocked):
                await sign_in(client, store, "demo", "wrong", clock=clock)
    finally:
        store.close()


async def test_an_unreachable_server_is_no_failed_sign_in(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)  # never synced: no user to check offline
    network = Network()
    network.down = True
    try:
        async with ServerClient(live_server.url, transport=network) as client:
            for _ in range(6):
                with pytest.raises(ServerUnreachable):
                    await sign_in(client, store, "demo", "demo", clock=FrozenClock(NOW))
        assert store.locked_until("demo") is None and store.last_used() is None
    finally:
        store.close()


def test_a_session_expires_after_15_minutes_without_activity_by_default(device_store_path: Path) -> None:
    store = DeviceStore(device_store_path)
    try:
        assert not session_expired(NOW, NOW + 15 * MINUTE - timedelta(seconds=1), store)
        assert session_expired(NOW, NOW + 15 * MINUTE, store)
    finally:
        store.close()


async def _set_parameters(server: ServerProcess, declared: str | None = None, **values: str) -> None:
    """The ship's office sets general parameters on ``server`` (and their declared type, when
    given: the server takes a value of its parameter's declared type only)."""
    fields = {} if declared is None else {"type": declared}
    async with ServerClient(server.url) as office:
        await office.sign_in("office", "office")
        await office.post_changes(
            [
                RecordChange(key="parameters", id=k, op="set", fields=fields | {"value": v})
                for k, v in values.items()
            ]
        )


async def test_the_rules_follow_the_synced_general_parameters(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    await _set_parameters(
        own_server, max_failed_sign_ins="2", lockout_minutes="3", session_timeout_minutes="5"
    )
    async with synced_device(own_server, device_store_path, onboard_cards(ship_dir)[0][2]) as device:
        await _fail(device.client, device.store, device.clock, 1)
        with pytest.raises(SignInLocked, match="try again in 3 minutes"):
            await sign_in(device.client, device.store, "demo", "wrong", clock=device.clock)
        assert not session_expired(NOW, NOW + 5 * MINUTE - timedelta(seconds=1), device.store)
        assert session_expired(NOW, NOW + 5 * MINUTE, device.store)


async def test_a_parameter_that_is_no_whole_number_falls_back_to_the_default(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    # declared text, so the server takes them: the device still reads them as whole numbers
    await _set_parameters(own_server, "str", session_timeout_minutes="soon", max_failed_sign_ins="0")
    async with synced_device(own_server, device_store_path, onboard_cards(ship_dir)[0][2]) as device:
        assert not session_expired(NOW, NOW + 14 * MINUTE, device.store)
        assert session_expired(NOW, NOW + 15 * MINUTE, device.store)
        await _fail(device.client, device.store, device.clock, 4)
        with pytest.raises(SignInLocked):
            await sign_in(device.client, device.store, "demo", "wrong", clock=device.clock)
