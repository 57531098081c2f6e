"""Delta sync against the real server: changes, deletes, paging, the horizon, faults."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fixtures.portraits import portrait
from sync_core.clock import FrozenClock, SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine, SyncStatus
from sync_core.device.session import sign_in
from sync_core.device.store import DatasetRecord
from sync_core.errors import ServerRejected
from sync_core.protocol import DATASETS, RecordChange, SyncState, id_column
from sync_core.server.changes import prune_tombstones
from sync_core.server.process import ServerProcess
from sync_core.server.store import open_server_store
from tests.registering import Network
from tests.sealed import opened_rows

from .conftest import start_server

ON_BOTH_ENGINES = True

STATION = {"type": "Muster", "deck": 5, "capacity": 120}


@asynccontextmanager
async def office(url: str) -> AsyncIterator[ServerClient]:
    """A client signed in as the ship's office."""
    async with ServerClient(url) as client:
        await client.sign_in("office", "office")
        yield client


@asynccontextmanager
async def device(url: str, path: Path, **engine_options: object) -> AsyncIterator[SyncEngine]:
    """An engine for the device store at ``path``, signed in as demo, after a first sync."""
    store = DeviceStore(path)
    async with ServerClient(url) as client:
        session = await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, engine_options.pop("clock", SystemClock()), **engine_options)  # type: ignore[arg-type]
        engine.server_id = session.server_id  # type: ignore[attr-defined]
        first = await engine.sync(session.server_id)
        assert first.status is SyncState.SUCCESS, first.error
        try:
            yield engine
        finally:
            store.close()


async def delta(engine: SyncEngine) -> SyncStatus:
    status = await engine.sync(engine.server_id)  # type: ignore[attr-defined]
    assert status.status is SyncState.SUCCESS, status.error
    return status


def restarted(store: DeviceStore, client: ServerClient) -> SyncStatus:
    """What a restarted app shows for ``store``: a new engine's status, read from the store."""
    return SyncEngine(store, client, SystemClock()).status


def _ids(store: DeviceStore, key: str) -> set[str]:
    with store.db.cursor() as cur:
        return {row[0] for row in cur.execute(f'SELECT "{id_column(key)}" FROM "{key}"').fetchall()}


def _figures(status: SyncStatus) -> dict[str, tuple[int, int, int, datetime | None]]:
    """Each dataset's records held, changes, refusals and last update, as the engine
    published them after a run."""
    return {
        key: (row.count, row.changes, row.failed, row.last_updated) for key, row in status.datasets.items()
    }


def _stored(store: DeviceStore) -> dict[str, tuple[int, int, int, datetime | None]]:
    """The same figures as the store holds them (what a restarted app shows)."""
    return {
        key: (row.count, row.changes, row.failed, row.last_updated) for key, row in store.datasets().items()
    }


def _first_names(store: DeviceStore) -> dict[str, str]:
    return {row["profile_id"]: row["first_name"] for row in opened_rows(store, "reservations")}


async def test_update_and_delete_arrive(own_server: ServerProcess, device_store_path: Path) -> None:
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        pictures_before = _ids(engine.store, "pictures")
        await admin.post_changes(
            [
                RecordChange(
                    key="reservations", id="P0000001", op="set", fields={"first_name": "Zoë [b]x[/b]"}
                ),
                RecordChange(key="reservations", id="P0000002", op="delete"),
            ]
        )
        status = await delta(engine)
        assert status.kind == "delta"
        assert status.datasets["reservations"].changes == 2
        assert _first_names(engine.store)["P0000001"] == "Zoë [b]x[/b]"
        assert "P0000002" not in _ids(engine.store, "reservations")
        assert len(_ids(engine.store, "pictures")) == len(pictures_before) - 1
        assert status.datasets["pictures"].count == status.datasets["reservations"].count
        assert _figures(status) == _stored(engine.store)


async def test_a_restarted_engine_names_the_kind_of_the_last_run(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        await admin.post_changes(
            [RecordChange(key="lifeboats", id="LB01", op="set", fields={"capacity": 99})]
        )
        assert (await delta(engine)).kind == "delta"
        assert restarted(engine.store, engine.client).kind == "delta"
        assert (await engine.full_sync()).status is SyncState.SUCCESS
        assert restarted(engine.store, engine.client).kind == "full"


async def test_a_restarted_engine_shows_the_last_empty_poll(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        await admin.post_changes(
            [RecordChange(key="lifeboats", id="LB01", op="set", fields={"capacity": 98})]
        )
        changed = await delta(engine)
        polled = await delta(engine)
        assert polled.last_delta_sync > changed.last_delta_sync  # type: ignore[operator]
        assert polled.datasets["lifeboats"].changes == 0
        shown = restarted(engine.store, engine.client)
        assert (shown.kind, shown.last_delta_sync) == ("delta", polled.last_delta_sync)
        assert _figures(polled) == _stored(engine.store) == _figures(shown)


async def test_250_changes_in_one_transaction_arrive_once_in_pages_of_100(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with (
        device(own_server.url, device_store_path, page_size=100) as engine,
        office(own_server.url) as admin,
    ):
        ids = sorted(_ids(engine.store, "reservations"))[:250]
        changes = [
            RecordChange(key="reservations", id=pid, op="set", fields={"cabin": f"X{n}"})
            for n, pid in enumerate(ids)
        ]
        await admin.post_changes(changes)
        status = await delta(engine)
        assert status.datasets["reservations"].changes == 250
        cabins = {row["profile_id"]: row["cabin"] for row in opened_rows(engine.store, "reservations")}
        assert all(cabins[pid] == f"X{n}" for n, pid in enumerate(ids))
        assert status.datasets["reservations"].count == len(cabins)


async def test_created_and_deleted_before_sync_never_appears(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with office(own_server.url) as admin:
        await admin.post_changes(
            [RecordChange(key="muster_stations", id="GHOST", op="set", fields=STATION | {"name": "Ghost"})]
        )
        await admin.post_changes([RecordChange(key="muster_stations", id="GHOST", op="delete")])
        await admin.post_changes(
            [RecordChange(key="muster_stations", id="SPARE", op="set", fields=STATION | {"name": "Spare"})]
        )
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        assert "GHOST" not in _ids(engine.store, "muster_stations")
        assert "SPARE" in _ids(engine.store, "muster_stations")
        await admin.post_changes([RecordChange(key="muster_stations", id="SPARE", op="delete")])
        await delta(engine)
        assert "SPARE" not in _ids(engine.store, "muster_stations")
        assert "GHOST" not in _ids(engine.store, "muster_stations")


async def test_cursor_past_the_horizon_gets_a_full_sync(
    ship_dir: Path, tmp_path: Path, device_store_path: Path, new_server_db: Any
) -> None:
    db = new_server_db(tmp_path)
    server = start_server(ship_dir, tmp_path, db)
    try:
        store = DeviceStore(device_store_path)
        async with ServerClient(server.url) as client:
            session = await sign_in(client, store, "demo", "demo")
            await SyncEngine(store, client, SystemClock()).sync(session.server_id)
        async with office(server.url) as admin:
            await admin.post_changes([RecordChange(key="reservations", id="P0000003", op="delete")])
    finally:
        server.stop()
    server_store = open_server_store(db, tmp_path / "portraits")
    assert prune_tombstones(server_store, datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)) > 0
    server_store.close()
    server = start_server(ship_dir, tmp_path, db)
    try:
        async with ServerClient(server.url) as client:
            session = await sign_in(client, store, "demo", "demo")
            status = await SyncEngine(store, client, SystemClock()).sync(session.server_id)
        assert status.status is SyncState.SUCCESS, status.error
        assert status.kind == "full"
        assert "P0000003" not in _ids(store, "reservations")
    finally:
        server.stop()
        store.close()


async def test_failure_between_fetch_and_commit_refetches_the_page(
    own_server: ServerProcess, device_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        cursor = engine.status.cursor
        await admin.post_changes(
            [
                RecordChange(key="lifeboats", id="LB02", op="set", fields={"description": f"edit {n}"})
                for n in range(3)
            ]
            + [RecordChange(key="parameters", id="child_max_age", op="set", fields={"value": "11"})]
        )

        def crash(*args: object) -> None:
            raise duckdb.IOException("disk pulled mid-commit")

        with monkeypatch.context() as patch:
            patch.setattr(engine.store, "apply_page", crash)
            failed = await engine.sync(engine.server_id)  # type: ignore[attr-defined]
        assert failed.status is SyncState.FAILED and failed.can_retry
        assert engine.store.sync_point().cursor == cursor  # type: ignore[union-attr]
        status = await delta(engine)
        assert status.datasets["lifeboats"].changes == 1
        assert status.datasets["parameters"].changes == 1
        assert engine.store.parameter("child_max_age") == "11"


@pytest.mark.parametrize("skew_hours", [3, -3])
async def test_device_clock_skew_does_not_lose_changes(
    own_server: ServerProcess, device_store_path: Path, skew_hours: int
) -> None:
    clock = FrozenClock(datetime.now(UTC) + timedelta(hours=skew_hours))
    async with (
        device(own_server.url, device_store_path, clock=clock) as engine,
        office(own_server.url) as admin,
    ):
        await admin.post_changes(
            [RecordChange(key="muster_stations", id="Z9", op="set", fields=STATION | {"name": "Aft deck"})]
        )
        await delta(engine)
        assert "Z9" in _ids(engine.store, "muster_stations")


def _counts(store: DeviceStore) -> dict[str, DatasetRecord]:
    return store.datasets()


async def test_store_pointed_at_another_ship_ends_with_that_ships_data(
    own_server: ServerProcess, device_store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from fixtures.ship import generate_ship

    other_ship = tmp_path_factory.mktemp("other-ship")
    generate_ship("small", 99, other_ship)
    async with device(own_server.url, device_store_path):
        pass
    other = start_server(other_ship, tmp_path_factory.mktemp("other-server"))
    try:
        store = DeviceStore(device_store_path)
        async with ServerClient(other.url) as client:
            session = await sign_in(client, store, "demo", "demo")
            status = await SyncEngine(store, client, SystemClock()).sync(session.server_id)
        assert status.kind == "full" and status.status is SyncState.SUCCESS
        assert store.has_synced_with(other.server_id)
        con = store.db
        with con.cursor() as cur:
            for key in DATASETS:
                mine = cur.execute(f'SELECT count(*) FROM "{key}"').fetchone()
                theirs = cur.execute(
                    f"SELECT count(*) FROM read_parquet('{other_ship / f'{key}.parquet'}')"
                ).fetchone()
                assert mine == theirs, key
            theirs_names = dict(
                cur.execute(
                    "SELECT profile_id, last_name FROM read_parquet(?)",
                    [str(other_ship / "reservations.parquet")],
                ).fetchall()
            )
        mine_names = {row["profile_id"]: row["last_name"] for row in opened_rows(store, "reservations")}
        assert mine_names == theirs_names
        store.close()
    finally:
        other.stop()


async def test_portraits_missing_after_a_crash_are_fetched_by_the_next_process(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with device(own_server.url, device_store_path) as engine:
        with engine.store.db.cursor() as cur:
            cur.execute("DELETE FROM pictures WHERE profile_id IN ('P0000004', 'P0000005')")
            lost, damaged = (
                row[0]
                for row in cur.execute(
                    "SELECT sha256 FROM pictures WHERE profile_id IN ('P0000006', 'P0000007') ORDER BY 1"
                ).fetchall()
            )
        engine.store.portraits.remove([lost])  # a power cut lost one file and damaged another
        engine.store.portraits.write(damaged, b"\xff\xd8\xff half written")
        assert engine.store.portrait(damaged) is None
        async with ServerClient(own_server.url) as client:
            session = await sign_in(client, engine.store, "demo", "demo")
            status = await SyncEngine(engine.store, client, SystemClock()).sync(session.server_id)
        assert status.kind == "delta" and status.datasets["pictures"].changes == 4
        with engine.store.db.cursor() as cur:
            held = {row[0] for row in cur.execute("SELECT profile_id FROM pictures").fetchall()}
        assert {"P0000004", "P0000005", "P0000006", "P0000007"} <= held
        assert engine.store.portrait(lost) is not None and engine.store.portrait(damaged) is not None
        assert _figures(status) == _stored(engine.store)


async def test_a_portrait_no_profile_names_is_removed(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with device(own_server.url, device_store_path) as engine:
        orphan, stray = "0" * 64, "1" * 64  # as a crash between a page and its portraits' fetch,
        with engine.store.db.cursor() as cur:  # or a failed full sync, might leave them
            cur.execute("INSERT INTO pictures (sha256, profile_id) VALUES (?, 'P0000006')", [orphan])
        engine.store.portraits.write(orphan, b"\xff\xd8\xff")
        engine.store.portraits.write(stray, b"\xff\xd8\xff")
        async with ServerClient(own_server.url) as client:  # the next process checks them all
            session = await sign_in(client, engine.store, "demo", "demo")
            status = await SyncEngine(engine.store, client, SystemClock()).sync(session.server_id)
        assert status.kind == "delta"
        assert orphan not in _ids(engine.store, "pictures")
        assert not engine.store.portraits.holds(orphan) and not engine.store.portraits.holds(stray)
        assert _figures(status) == _stored(engine.store)


async def test_a_replaced_portrait_arrives_by_delta(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    async with device(own_server.url, device_store_path) as engine, office(own_server.url) as admin:
        await delta(engine)  # the first delta of a process checks every portrait; later ones do not
        with pytest.raises(ServerRejected, match="picture endpoint"):
            await admin.post_changes(
                [
                    RecordChange(
                        key="reservations", id="P0000006", op="set", fields={"picture_sha256": "0" * 64}
                    )
                ]
            )
        jpeg = portrait(random.Random(6), "P0000006-new", uniform=False)
        await admin.put_picture("P0000006", jpeg)
        status = await delta(engine)
        new = hashlib.sha256(jpeg).hexdigest()
        with engine.store.db.cursor() as cur:
            held = [
                row[0]
                for row in cur.execute("SELECT sha256 FROM pictures WHERE profile_id = 'P0000006'").fetchall()
            ]
            (named,) = cur.execute(
                "SELECT picture_sha256 FROM reservations WHERE profile_id = 'P0000006'"
            ).fetchall()[0]
        assert held == [new] and named == new and engine.store.portrait(new) == jpeg
        assert len(set(engine.store.portraits.held())) == engine.store.datasets()["pictures"].count
        assert status.datasets["pictures"].changes == 2  # the old one deleted, the new one added
        assert _figures(status) == _stored(engine.store)


async def test_a_restarted_engine_shows_the_last_failure_until_a_sync_succeeds(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    network = Network()
    store = DeviceStore(device_store_path)
    try:
        async with ServerClient(own_server.url, transport=network) as client:
            await sign_in(client, store, "demo", "demo")
            engine = SyncEngine(store, client, SystemClock())
            assert (await engine.sync(own_server.server_id)).status is SyncState.SUCCESS
            for full in (False, True):
                network.down = True
                failed = await engine.sync(own_server.server_id, full=full)
                shown = restarted(store, client)
                assert (shown.status, shown.error) == (SyncState.FAILED, failed.error)
                assert shown.can_retry and shown.error
                assert shown.next_delta_due is not None
                assert shown.next_delta_due - datetime.now(UTC) <= timedelta(minutes=1)
                network.down = False
                assert (await engine.sync(own_server.server_id, full=full)).status is SyncState.SUCCESS
                shown = restarted(store, client)
                assert (shown.status, shown.error) == (SyncState.SUCCESS, None)
    finally:
        store.close()
