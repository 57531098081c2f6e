"""The retention wipe and the device's last use (docs/architecture.md,
'Nothing unsynced is lost silently'), on a device synced from the real server, with a frozen
clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine, shredding, sign_in
from sync_core.device.retention import days_to_wipe, due, wipe, wipe_if_due
from sync_core.device.upload import Uploader
from sync_core.protocol import DATASETS, RecordChange, SyncState
from sync_core.server.process import ServerProcess
from tests.registering import (
    NOW,
    Device,
    Network,
    onboard_cards,
    register_all,
    server_registered,
    synced_device,
)

DAY = timedelta(days=1)


def _station(ship_dir: Path) -> str:
    return onboard_cards(ship_dir, count=1)[0][2]


def _counts(store: DeviceStore) -> dict[str, int]:
    return {key: record.count for key, record in store.datasets().items()}


def _tables(store: DeviceStore) -> set[str]:
    with store.db.cursor() as cur:
        return {row[0] for row in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _snapshot(store: DeviceStore) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    with store.db.cursor() as cur:
        return {
            table: sorted(cur.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in sorted(_tables(store))
        }


def test_last_use_survives_a_restart_and_is_written_at_most_once_a_minute(device_store_path: Path) -> None:
    store = DeviceStore(device_store_path)
    assert store.last_used() is None
    assert days_to_wipe(store, NOW) is None and not due(store, NOW + 100 * DAY)
    store.touch(NOW)
    store.touch(NOW + timedelta(seconds=30))
    assert store.last_used() == NOW
    store.touch(NOW + timedelta(minutes=2))
    store.close()
    store = DeviceStore(device_store_path)
    try:
        assert store.last_used() == NOW + timedelta(minutes=2)
        assert days_to_wipe(store, NOW + timedelta(minutes=2)) == 10.0
    finally:
        store.close()


async def test_unused_for_9_days_23_hours_nothing_is_cleared(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    async with synced_device(live_server, device_store_path, _station(ship_dir)) as device:
        store = device.store
        store.touch(NOW)
        before = _counts(store)
        later = NOW + timedelta(days=9, hours=23)
        assert not due(store, later)
        assert days_to_wipe(store, later) == pytest.approx(1 / 24)
        assert await wipe_if_due(store, later) is None
        assert _counts(store) == before and all(before.values())
        assert store.has_synced_with(live_server.server_id)


async def test_unused_for_10_days_the_data_is_cleared_and_unsynced_registrations_kept(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = _station(ship_dir)
    async with synced_device(live_server, device_store_path, station) as device:
        store = device.store
        await register_all(device, onboard_cards(ship_dir, station, 2))  # never uploaded: pending
        store.begin_staging()  # as a full sync killed part-way leaves it
        store.count_failed_sign_in("demo", 1, NOW + DAY)  # locked
        store.touch(NOW)
        device_id = store.device_id
        assert any(store.portraits.held())
        report = await wipe_if_due(store, NOW + 10 * DAY)
        assert report is not None
        assert (report.kept, report.removed, report.upload) == (2, 0, None)
        assert _counts(store) == dict.fromkeys(DATASETS, 0)
        assert not store.portraits.root.exists()  # the portrait files went with the rows
        assert not {name for name in _tables(store) if name.endswith(("__staging", "__index"))}
        assert store.sync_point() is None and store.datasets()["users"].last_updated is None
        assert store.last_used() is None and not due(store, NOW + 100 * DAY)
        assert store.locked_until("demo") is None
        assert [r.username for r in store.outbox.pending(live_server.server_id, 10)] == ["demo", "demo"]
        assert store.device_id == device_id
        assert SyncEngine(store, device.client, device.clock).needs_full_sync(live_server.server_id)


async def test_a_sign_in_restarts_the_count(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    async with synced_device(live_server, device_store_path, _station(ship_dir)) as device:
        store = device.store
        store.touch(NOW)
        await sign_in(device.client, store, "demo", "demo", clock=FrozenClock(NOW + 9 * DAY))
        assert store.last_used() == NOW + 9 * DAY
        assert not due(store, NOW + 10 * DAY)
        assert days_to_wipe(store, NOW + 10 * DAY) == 9.0
        assert due(store, NOW + 19 * DAY)


async def test_retention_days_is_the_synced_general_parameter(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    async with ServerClient(own_server.url) as office:
        await office.sign_in("office", "office")
        await office.post_changes(
            [RecordChange(key="parameters", id="retention_days", op="set", fields={"value": "3"})]
        )
    async with synced_device(own_server, device_store_path, _station(ship_dir)) as device:
        device.store.touch(NOW)
        assert not due(device.store, NOW + 3 * DAY - timedelta(minutes=1))
        assert await wipe_if_due(device.store, NOW + 3 * DAY) is not None


async def test_online_the_wipe_uploads_first_and_keeps_nothing(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = _station(ship_dir)
    async with synced_device(own_server, device_store_path, station) as device:
        await register_all(device, onboard_cards(ship_dir, station, 3))
        report = await wipe(device.store, device.uploader)
        assert (report.kept, report.removed) == (0, 3)
        assert report.upload is not None and report.upload.status is SyncState.SUCCESS
        with device.store.db.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM registrations").fetchall() == [(0,)]
    assert await server_registered(own_server, station) == 3


async def _sign_in_and_upload(device: Device, server: ServerProcess) -> tuple[int, SyncState]:
    """Sign demo in online, upload the outbox and sync as the app does (a full sync);
    returns the registrations uploaded and the sync's status."""
    session = await sign_in(device.client, device.store, "demo", "demo", clock=device.clock)
    assert session.online and session.server_id == server.server_id
    uploader = Uploader(device.store.outbox, device.client, device.clock, session.server_id, lambda _: None)
    uploaded = (await uploader.drain()).sent
    status = await SyncEngine(device.store, device.client, device.clock).sync(session.server_id)
    assert status.kind == "full"
    return uploaded, status.status


async def test_offline_the_wipe_keeps_what_waits_and_it_uploads_at_the_next_online_sign_in(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    station = _station(ship_dir)
    first, *waiting = onboard_cards(ship_dir, station, 3)
    network = Network()
    async with synced_device(own_server, device_store_path, station, network) as device:
        await register_all(device, [first])
        assert (await device.uploader.drain()).sent == 1
        network.down = True
        await register_all(device, waiting)
        report = await wipe(device.store, device.uploader)
        assert (report.kept, report.removed) == (2, 1)
        assert report.upload is not None and report.upload.pending == 2
        assert report.upload.status is SyncState.NOT_STARTED and "unreachable" in (report.upload.error or "")
        assert _counts(device.store) == dict.fromkeys(DATASETS, 0) and device.store.sync_point() is None
        network.down = False
        assert await _sign_in_and_upload(device, own_server) == (2, SyncState.SUCCESS)
        assert all(_counts(device.store).values())
    assert await server_registered(own_server, station) == 3


async def test_a_wipe_that_fails_leaves_the_old_store_whole_and_a_crash_leaves_nothing_behind(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    station = _station(ship_dir)
    fresh = shredding.fresh_path(device_store_path)
    async with synced_device(live_server, device_store_path, station) as device:
        store = device.store
        await register_all(device, onboard_cards(ship_dir, station, 2))
        sent = store.outbox.pending(live_server.server_id, 1)[0].registration_id
        store.outbox.settle([sent], {}, [], NOW)
        store.count_failed_sign_in("demo", 1, NOW + DAY)  # locked
        store.touch(NOW)
        before, point = _snapshot(store), store.sync_point()
        real_replace = shredding.replace_store

        def disk_full(path: Path, new: Path) -> None:
            assert new.is_file()  # the kept registrations were written
            raise OSError("no space left on the device (test)")

        monkeypatch.setattr(shredding, "replace_store", disk_full)
        with pytest.raises(OSError):
            store.wipe()
        assert _snapshot(store) == before and store.sync_point() == point
        assert not fresh.exists()
        monkeypatch.setattr(shredding, "replace_store", real_replace)
        assert store.wipe() == (1, 1)
        assert _counts(store) == dict.fromkeys(DATASETS, 0) and store.sync_point() is None
        assert store.locked_until("demo") is None and store.last_used() is None
        assert store.outbox.tally(live_server.server_id).pending == 1
    fresh.write_bytes(b"half a store a crash left")  # a crash while the kept file was written
    reopened = DeviceStore(device_store_path)
    assert not fresh.exists() and reopened.outbox.tally(live_server.server_id).pending == 1


def test_portrait_files_a_killed_wipe_left_go_at_the_next_open(device_store_path: Path) -> None:
    store = DeviceStore(device_store_path)  # as after a wipe's commit, before its files went
    store.unlock(bytes(32))
    store.portraits.write("a" * 64, b"\xff\xd8\xff portrait \xff\xd9")
    store.close()
    reopened = DeviceStore(device_store_path)
    assert not reopened.portraits.root.exists()
    reopened.close()
