"""The server's sign-in under load: argon2id verifiers of any parameters, a bounded
verification pool, key slots made for users who lack one, a burst of devices, the offline
sign-in of a synced crew member when the server is slow (docs/security.md, "Server sign-in").

In-process (``httpx.ASGITransport``) where a port is not the point; the burst runs a real
server on 127.0.0.1. Lockout, rate limit, revocation and HTTPS: test_server_hardening.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from argon2 import PasswordHasher

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine, sign_in
from sync_core.key_slots import make_slot, open_slot
from sync_core.passwords import HASHER
from sync_core.protocol import RecordChange
from sync_core.server import key_slots as server_key_slots
from sync_core.server import missing_slots
from sync_core.server.app import create_app
from sync_core.server.edits import apply_changes
from sync_core.server.missing_slots import MissingSlots
from sync_core.server.process import ServerProcess
from sync_core.server.sign_in import Busy, SignInLimits, VerificationPool
from sync_core.server.store import ServerStore, ServerUser
from tests.conftest import portraits_option

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ON_BOTH_ENGINES = True


@pytest.fixture
async def office(server_store: ServerStore) -> AsyncIterator[ServerClient]:
    """A client of the in-process app over ``server_store``, not yet signed in."""
    app = create_app(server_store, FrozenClock(T0))
    async with ServerClient("http://muster.test", transport=httpx.ASGITransport(app)) as client:
        yield client


async def test_a_verifier_made_with_other_parameters_still_signs_in(
    server_store: ServerStore, office: ServerClient
) -> None:
    older = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash("older secret")
    change = RecordChange(key="users", id="demo", op="set", fields={"password_hash": older})
    apply_changes(server_store, [change])
    signed_in = await office.sign_in("demo", "older secret")
    assert signed_in.username == "demo"


def test_setting_a_password_leaves_other_edits_free_while_it_derives(
    server_store: ServerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_edit = RecordChange(key="users", id="office", op="set", fields={"display_name": "Purser's office"})
    finished: list[bool] = []

    class HashingMeanwhile:
        def hash(self, password: str) -> str:
            writer = threading.Thread(
                target=lambda: finished.append(bool(apply_changes(server_store, [other_edit])))
            )
            writer.start()
            writer.join(timeout=5)
            return HASHER.hash(password)

    monkeypatch.setattr(server_key_slots, "HASHER", HashingMeanwhile())
    apply_changes(
        server_store, [RecordChange(key="users", id="demo", op="set", fields={"password": "new secret"})]
    )
    assert finished == [True]  # the other edit committed while the password was derived
    user = server_store.user("demo")
    assert user is not None and HASHER.verify(user.password_hash, "new secret")


def _without_slot(store: ServerStore, username: str) -> None:
    """``username``'s key slot taken away, as in a store made before key slots."""
    apply_changes(store, [RecordChange(key="users", id=username, op="set", fields={"key_slot": None})])


async def test_a_user_without_a_key_slot_gets_one_made_on_a_verification_worker(
    server_store: ServerStore, office: ServerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_slot(server_store, "demo")
    threads: list[str] = []

    def recorded(password: str, data_key: bytes) -> str:
        threads.append(threading.current_thread().name)
        return make_slot(password, data_key)

    monkeypatch.setattr(missing_slots, "make_slot", recorded)
    signed_in = await office.sign_in("demo", "demo")
    assert signed_in.key_slot is not None
    assert open_slot(signed_in.key_slot, "demo") == server_store.ship_key()
    assert len(threads) == 1 and threads[0].startswith("sign-in")  # bounded like the checks
    stored = None
    for _ in range(100):  # the background writer stores it soon after the answer
        user = server_store.user("demo")
        stored = user.key_slot if user else None
        if stored:
            break
        await asyncio.sleep(0.05)
    assert stored == signed_in.key_slot
    assert (await office.sign_in("demo", "demo")).key_slot == stored  # made once
    assert len(threads) == 1


def test_slots_made_at_sign_in_are_stored_in_one_write_unless_the_password_changed(
    server_store: ServerStore,
) -> None:
    for username in ("demo", "office"):
        _without_slot(server_store, username)
    demo, office = server_store.user("demo"), server_store.user("office")  # as their checks read them
    assert demo is not None and office is not None
    change = RecordChange(key="users", id="office", op="set", fields={"password": "new office"})
    apply_changes(server_store, [change])  # the office sets a new password meanwhile
    office_slot = cast(ServerUser, server_store.user("office")).key_slot
    before = server_store.feed_bounds()[1]
    slots = MissingSlots(server_store)
    given = [slots.given(demo, "demo"), slots.given(office, "office")]
    slots.close()
    assert cast(ServerUser, server_store.user("demo")).key_slot == given[0].key_slot
    assert cast(ServerUser, server_store.user("office")).key_slot == office_slot != given[1].key_slot
    assert server_store.feed_bounds()[1] == before + 1  # demo's slot, journaled: devices sync it


class _HeldStore:
    """A server store whose user lookups wait until ``release`` is set (fault injection:
    holds a verification worker busy) and are recorded in ``asked``."""

    def __init__(self, real: ServerStore) -> None:
        self.real = real
        self.release = threading.Event()
        self.asked: list[str] = []

    def user(self, username: str) -> ServerUser | None:
        self.asked.append(username)
        self.release.wait(10)
        return self.real.user(username)


async def test_a_full_pool_refuses_and_a_cancelled_waiting_check_never_runs(
    server_store: ServerStore,
) -> None:
    pool = VerificationPool(SignInLimits(workers=1, queue_max=1))
    held = _HeldStore(server_store)
    store = cast(ServerStore, held)
    try:
        running = pool.submit("demo", "demo", store)
        waiting = pool.submit("office", "office", store)
        with pytest.raises(Busy) as busy:
            pool.submit("crew01", "x", store)
        assert busy.value.retry_after >= 1
        waiting.cancel()
        held.release.set()
        assert (await running) is not None
        again = await pool.submit("office", "office", store)
        assert again is not None and again.username == "office"
        assert held.asked == ["demo", "office"]  # the cancelled check of office never ran
    finally:
        pool.close()


async def test_a_sign_in_is_not_queued_behind_more_work_than_the_wait_bound(
    server_store: ServerStore,
) -> None:
    pool = VerificationPool(SignInLimits(workers=1, queue_max=100, wait_max=0.0))
    held = _HeldStore(server_store)
    try:
        running = pool.submit("demo", "demo", cast(ServerStore, held))
        with pytest.raises(Busy):  # room in the queue, but it would wait behind the running check
            pool.submit("office", "office", cast(ServerStore, held))
        held.release.set()
        assert (await running) is not None
    finally:
        pool.close()


class _Counted(httpx.AsyncBaseTransport):
    """The real transport, counting the status codes of the answers."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.statuses: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        self.statuses[response.status_code] += 1
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_a_burst_of_40_devices_all_sign_in_through_a_small_pool(
    ship_dir: Path, tmp_path: Path, new_server_db: Any
) -> None:
    options = ("--sign-in-workers", "1", "--sign-in-queue", "1", *portraits_option(tmp_path))
    server = ServerProcess(ship_dir, new_server_db(tmp_path), tmp_path / "server.log", options=options)
    server.start()
    transport = _Counted()
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(ServerClient(server.url, transport=transport))
                for _ in range(40)
            ]
            answers = await asyncio.gather(*(client.sign_in("demo", "demo") for client in clients))
    finally:
        server.stop()
    assert [answer.username for answer in answers] == ["demo"] * 40
    assert transport.statuses[200] == 40
    assert transport.statuses[503] > 0  # the pool was full at times: the devices retried


class _Silent(httpx.AsyncBaseTransport):
    """A server that never answers (a burst keeps it busy)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_synced_crew_member_signs_in_offline_when_the_server_is_slow(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    try:
        async with ServerClient(live_server.url) as client:
            await sign_in(client, store, "demo", "demo")
            assert (
                await SyncEngine(store, client, FrozenClock(T0)).sync(live_server.server_id)
            ).error is None
        async with ServerClient(live_server.url, transport=_Silent()) as slow:
            started = time.monotonic()
            session = await sign_in(slow, store, "demo", "demo", clock=FrozenClock(T0), synced_wait=0.5)
            waited = time.monotonic() - started
        assert not session.online and session.username == "demo"
        assert waited < 5  # not the client's whole deadline (25 s)
    finally:
        store.close()
