"""Fourteen simulated days of two unattended handhelds on a fake clock, against the real
server app in-process: the server restarted 3 times, access tokens expiring every 12 hours,
connectivity flapping, office edits, 1,000 registrations. Afterwards both devices hold what
the server holds, every registration is on the server exactly once, and nobody signed in
after the first sign-in."""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

from sync_core.device import DeviceStore, ServerClient
from sync_core.device.registrar import Post, Registrar, Result
from sync_core.device.runtime import DeviceRuntime
from sync_core.errors import SessionEnded
from sync_core.protocol import API_PREFIX, DATASETS, RecordChange, SafetyMode, SyncState, wire_columns
from tests.registering import onboard_cards
from tests.sealed import opened_rows
from tests.ship_world import URL, Ship

RENEW = f"{API_PREFIX}/session/renew"

STEP = 4 * 3600.0  # the fake clock moves four hours a step: a delta sync each, tokens end every 3
STEPS = 14 * 6  # fourteen days
RESTARTS = {15, 38, 70}
DOWN = {6, 7, 25, 26, 27, 49, 50, 60, 61}  # the link is down during these steps
EDITS = set(range(2, STEPS, 5))
PER_DEVICE = 500


class Handheld:
    """One device: its store, its runtime, and a registrar cycling its people (register,
    then unregister, and again) until it made ``PER_DEVICE`` registrations."""

    def __init__(self, ship: Ship, path: Path) -> None:
        self.store = DeviceStore(path)
        self.runtime: DeviceRuntime = ship.runtime(self.store, unattended=True)
        self.registrar: Registrar | None = None
        self.cards: list[str] = []
        self.made = 0

    async def start(self, ship_dir: Path, station: str) -> None:
        await self.runtime.start()
        session = (await self.runtime.sign_in("demo", "demo")).session
        assert (await self.runtime.sync_now(session.server_id or "")).status is SyncState.SUCCESS
        post = Post("demo", SafetyMode.GENASS, station, self.runtime.clock, UTC)
        self.registrar = await self.runtime.registrar(post)
        self.cards = [card for card, _, _ in onboard_cards(ship_dir, station, 40)]

    async def register(self, count: int) -> None:
        assert self.registrar is not None
        for _ in range(min(count, PER_DEVICE - self.made)):
            card = self.cards[self.made % len(self.cards)]
            person = await self.registrar.book.find_card(card)
            assert person is not None
            if (self.made // len(self.cards)) % 2 == 0:
                assert (await self.registrar.register(person)).result is Result.REGISTERED
            else:
                assert (await self.registrar.unregister(person)).result is Result.UNREGISTERED
            self.made += 1

    async def quiet(self) -> None:
        """Until nothing runs: no chore, no sync, no upload under way."""
        for _ in range(2000):
            await self.runtime.idle()
            sync = self.runtime.state.sync
            if not sync.running and sync.upload.status is not SyncState.IN_PROGRESS:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("the device kept working")


async def test_two_handhelds_for_fourteen_days(ship: Ship, ship_dir: Path, tmp_path: Path) -> None:
    stations = sorted({station for _, _, station in onboard_cards(ship_dir, count=300)})
    handhelds = [Handheld(ship, tmp_path / f"device-{n}.duckdb") for n in range(2)]
    for handheld, station in zip(handhelds, stations, strict=False):
        await handheld.start(ship_dir, station)
    office = ServerClient(URL, transport=ship.link)
    try:
        for step in range(STEPS):
            if step in RESTARTS:
                ship.restart()
            ship.link.down = step in DOWN
            if step in EDITS and not ship.link.down:
                await _office_edit(office, step)
            for handheld in handhelds:
                await handheld.register(PER_DEVICE // STEPS + 1)
            ship.clock.advance(STEP)
            for handheld in handhelds:
                await handheld.quiet()
        ship.link.down = False
        for handheld in handhelds:
            assert handheld.made == PER_DEVICE
            await handheld.runtime.monitor.check()
            await handheld.quiet()
            assert (
                await handheld.runtime.sync_now(ship.store.server_id or "", full=False)
            ).status is SyncState.SUCCESS
            assert handheld.runtime.state.sync.upload.pending == 0
            _assert_equals_server(handheld.store, ship)
        _assert_each_registration_once(ship, handhelds)
        assert ship.link.sign_ins.get("demo") == 2  # the first sign-in of each device, no other
        assert ship.link.requests[RENEW] >= 2 * 14  # sessions renewed by the devices alone
    finally:
        await office.aclose()
        for handheld in handhelds:
            await handheld.runtime.aclose()
            handheld.store.close()


async def _office_edit(office: ServerClient, step: int) -> None:
    """The office changes a lifeboat's capacity (signing in again when its session ended)."""
    change = RecordChange(key="lifeboats", id="LB01", op="set", fields={"capacity": 50 + step})
    try:
        await office.post_changes([change])
    except SessionEnded:
        await office.sign_in("office", "office")
        await office.post_changes([change])


def _assert_equals_server(device: DeviceStore, ship: Ship) -> None:
    snapshot = ship.store.snapshot()
    for key in DATASETS:
        held = sorted(tuple(row[name] for name in wire_columns(key)) for row in opened_rows(device, key))
        served = sorted(
            tuple(row.values()) for row in snapshot.tables[key].select(list(wire_columns(key))).to_pylist()
        )
        assert held == served, key


def _assert_each_registration_once(ship: Ship, handhelds: list[Handheld]) -> None:
    with ship.store.db.cursor() as cur:
        on_server = [row[0] for row in cur.execute("SELECT registration_id FROM registrations").fetchall()]
    made: list[str] = []
    for handheld in handhelds:
        with handheld.store.db.cursor() as cur:
            rows = cur.execute("SELECT registration_id, upload_state FROM registrations").fetchall()
        assert {state for _, state in rows} == {"sent"}
        made += [rid for rid, _ in rows]
    assert len(made) == 2 * PER_DEVICE
    assert sorted(on_server) == sorted(made)
