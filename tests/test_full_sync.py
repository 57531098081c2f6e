"""Full sync against the real server on 127.0.0.1 with the real client."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import duckdb
import httpx
import pytest

from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine, SyncStatus
from sync_core.device.headless import sync_once
from sync_core.device.session import sign_in
from sync_core.errors import SessionEnded
from sync_core.protocol import DATASETS, SyncState, id_column
from sync_core.server.process import ServerProcess

from .faults import FaultyTransport
from .sealed import opened_rows


def _assert_equals_ship(store: DeviceStore, ship_dir: Path) -> None:
    for key in DATASETS:
        device = [tuple(row.values()) for row in opened_rows(store, key)]
        ship = duckdb.sql(
            f"SELECT * FROM '{ship_dir / f'{key}.parquet'}' ORDER BY \"{id_column(key)}\""
        ).fetchall()
        assert len(device) == len(ship) > 0, key
        assert device == ship, key
    held = {row["sha256"] for row in opened_rows(store, "pictures")}
    assert set(store.portraits.held()) == held  # each portrait's bytes in its file


async def test_full_sync_copies_every_dataset(
    live_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    status = await sync_once(live_server.url, store, "demo", "demo")
    assert status.status is SyncState.SUCCESS, status.error
    assert all(row.status is SyncState.SUCCESS for row in status.datasets.values())
    assert status.cursor is not None and status.cursor > 0
    assert store.has_synced_with(live_server.server_id)
    counts = {key: row.count for key, row in status.datasets.items()}
    async with ServerClient(live_server.url) as client:
        await client.sign_in("demo", "demo")
        manifest = await client.create_snapshot()
    assert counts == manifest.counts
    assert manifest.cursor == status.cursor
    _assert_equals_ship(store, ship_dir)
    store.close()


def _staged(status: SyncStatus) -> int:
    """The records a running full sync has fetched and staged so far."""
    return status.progress.records if status.running and status.progress else 0


async def _sync_killing_server_after_two(server: ServerProcess, store: DeviceStore) -> SyncStatus:
    async with ServerClient(server.url) as client:
        await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, SystemClock())

        def kill_after_two(status: SyncStatus) -> None:
            if _staged(status) and all(status.datasets[key].changes for key in DATASETS[:2]):
                server.kill()

        engine.subscribe(kill_after_two)
        return await engine.full_sync()


async def test_first_sync_dying_part_way_leaves_store_empty(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    status = await _sync_killing_server_after_two(own_server, store)
    assert status.status is SyncState.FAILED
    assert status.can_retry
    assert own_server.url in (status.error or "")
    assert store.sync_point() is None
    assert all(record.count == 0 for record in store.datasets().values())
    store.close()


async def test_sync_dying_part_way_keeps_previous_data(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    first = await sync_once(own_server.url, store, "demo", "demo")
    assert first.status is SyncState.SUCCESS
    before = store.sync_point()
    status = await _sync_killing_server_after_two(own_server, store)
    assert status.status is SyncState.FAILED and before is not None
    assert store.sync_point() == dataclasses.replace(before, last_failure=status.error)  # kept to show
    assert {key: row.count for key, row in status.datasets.items()} == {
        key: row.count for key, row in first.datasets.items()
    }
    _assert_equals_ship(store, ship_dir)
    store.close()


async def test_a_cancelled_sync_ends_failed_and_the_next_one_succeeds(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    async with ServerClient(live_server.url) as client:
        await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, SystemClock())
        run = asyncio.create_task(engine.full_sync())

        def cancel_after_users(status: SyncStatus) -> None:
            if _staged(status):
                run.cancel()

        engine.subscribe(cancel_after_users)
        with pytest.raises(asyncio.CancelledError):
            await run
        assert engine.status.status is SyncState.FAILED and engine.status.can_retry
        assert store.sync_point() is None
        assert (await engine.full_sync()).status is SyncState.SUCCESS
    store.close()


def _no_pictures(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
    if request.method == "POST" and request.url.path.endswith("/pictures"):
        raise AssertionError("a held portrait was fetched again")
    return None


async def test_sync_now_reuses_the_portraits_it_holds(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    first = await sync_once(live_server.url, store, "demo", "demo")
    again = await sync_once(
        live_server.url, store, "demo", "demo", full=True, transport=FaultyTransport(_no_pictures)
    )
    assert again.status is SyncState.SUCCESS and again.kind == "full", again.error
    assert again.datasets["pictures"].count == first.datasets["pictures"].count > 0
    assert (first.datasets["pictures"].changes, again.datasets["pictures"].changes) == (
        first.datasets["pictures"].count,
        0,
    )  # reused, not changed
    assert store.datasets()["pictures"].changes == 0  # and so after a restart
    store.close()


async def test_a_full_sync_publishes_its_progress(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    """Records and portraits fetched against the totals, rising to them, with a time left
    once both kinds have a rate; no row says Success before the swap; no progress after it."""
    store = DeviceStore(device_store_path)
    seen: list[SyncStatus] = []
    async with ServerClient(live_server.url) as client:
        await sign_in(client, store, "demo", "demo")
        manifest = await client.create_snapshot()
        engine = SyncEngine(store, client, SystemClock())
        engine.subscribe(seen.append)
        final = await engine.full_sync()
    store.close()
    running = [status for status in seen if status.running and status.progress is not None]
    last = running[-1].progress
    assert last is not None and final.progress is None
    assert (last.records, last.records_total) == (
        sum(manifest.counts.values()) - manifest.counts["pictures"],
    ) * 2
    assert last.portraits == last.portraits_total == manifest.counts["pictures"] > 0
    records = [status.progress.records for status in running if status.progress]
    assert records == sorted(records) and records[0] == 0
    assert any(status.progress and status.progress.seconds_left is not None for status in running)
    assert not any(row.status is SyncState.SUCCESS for status in running for row in status.datasets.values())
    assert running[-1].datasets["pictures"].count == manifest.counts["pictures"]
    assert "Records" in last.summary() and f"of {last.portraits_total:,}" in last.summary()


async def test_a_token_the_server_no_longer_knows_says_the_session_ended(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    async with ServerClient(live_server.url) as client:
        session = await sign_in(client, store, "demo", "demo")
        client.token = "from-before-the-server-restarted"
        client.credential = None  # no refresh token to renew it with (tests/test_renewal.py has those)
        status = await SyncEngine(store, client, SystemClock()).sync(session.server_id)
    assert status.status is SyncState.FAILED
    assert status.error == str(SessionEnded())
    assert "sign in again" in status.error
    store.close()


async def test_a_failed_full_sync_reports_nothing_applied(
    own_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    status = await _sync_killing_server_after_two(own_server, store)
    assert all(row.status is SyncState.FAILED and row.changes == 0 for row in status.datasets.values())
    store.close()
