"""Stores made by earlier releases open and serve with the current code (numbered,
forward-only migrations, ``sync_core.migrations``).

``tests/old_stores/<commit>/`` holds a server store and a device store made by that commit's
code (``tests/old_stores/make.sh``): a 20-profile ship imported, synced to a device, and one
card registered where that commit could. The first two predate the change journal.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import uuid6

from sync_core.device import DeviceStore
from sync_core.device.client import ServerClient
from sync_core.device.headless import sync_once
from sync_core.errors import StoreUnusable
from sync_core.protocol import ItemOutcome, Registration, RegistrationAction, SafetyMode, SyncState
from sync_core.server.portraits import PortraitFiles
from sync_core.server.process import ServerProcess
from sync_core.server.schema import migrations
from sync_core.server.store import open_server_store

OLD_STORES = Path(__file__).parent / "old_stores"
COMMITS = sorted(path.name for path in OLD_STORES.iterdir() if path.is_dir())
REGISTERED_BY = {"72d69e7", "a80609c"}  # commits that had `muster register`


def unpack(commit: str, name: str, where: Path) -> Path:
    path = where / f"{name}.duckdb"
    with gzip.open(OLD_STORES / commit / f"{name}.duckdb.gz") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def _registration() -> Registration:
    return Registration(
        registration_id=str(uuid6.uuid7()),
        profile_id="P0000002",
        action=RegistrationAction.REGISTER,
        safety_mode=SafetyMode.GENASS,
        muster_station="A",
        registered_at=datetime.now(UTC),
        username="demo",
        device_id="test-device",
    )


@pytest.mark.parametrize("commit", COMMITS)
async def test_stores_of_an_earlier_release_open_and_serve(
    commit: str, ship_dir: Path, tmp_path: Path
) -> None:
    server_db, device_db = unpack(commit, "server", tmp_path), unpack(commit, "device", tmp_path)
    server = ServerProcess(ship_dir, server_db, tmp_path / "server.log", start_timeout=60)
    server.start()
    try:
        store = DeviceStore(device_db)
        delta = await sync_once(server.url, store, "demo", "demo")
        assert delta.status is SyncState.SUCCESS, delta.error
        full = await sync_once(server.url, store, "demo", "demo", full=True)
        assert full.status is SyncState.SUCCESS, full.error
        assert full.datasets["reservations"].count == 20
        assert store.outbox.tally(server.server_id).pending == 0
        store.close()
        async with ServerClient(server.url) as client:
            await client.sign_in("demo", "demo")
            receipt = await client.post_registrations([_registration()])
        assert receipt.results[0].outcome is ItemOutcome.APPLIED
    finally:
        server.stop()
    with duckdb.connect(str(server_db), read_only=True) as db:
        assert db.sql("SELECT max(version) FROM schema_version").fetchall() == [
            (len(migrations(PortraitFiles(tmp_path))),)
        ]
        kept = db.sql("SELECT count(*) FROM registrations").fetchall()[0][0]
        in_store = db.sql("SELECT count(*) FROM pictures WHERE jpeg IS NOT NULL").fetchall()[0][0]
        portraits = db.sql("SELECT count(*) FROM pictures").fetchall()[0][0]
    assert kept == (2 if commit in REGISTERED_BY else 1)
    assert in_store == 0 and portraits > 0  # moved out to their files, which served the full sync
    assert len(list(Path(f"{server_db}.portraits").rglob("*.jpg"))) == portraits


def test_a_store_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    for path in (tmp_path / "device.duckdb", tmp_path / "server.duckdb"):
        with duckdb.connect(str(path)) as db:
            db.execute("CREATE TABLE server_meta (server_id VARCHAR, imported_at TIMESTAMP)")
            db.execute("INSERT INTO server_meta VALUES ('s', NULL)")
            db.execute("CREATE TABLE schema_version (version INTEGER, summary VARCHAR, applied_at TIMESTAMP)")
            db.execute("INSERT INTO schema_version VALUES (99, 'from the future', now())")
    with pytest.raises(StoreUnusable, match="newer Muster"):
        DeviceStore(tmp_path / "device.duckdb")
    with pytest.raises(StoreUnusable, match="newer Muster"):
        open_server_store(tmp_path / "server.duckdb")


def test_portraits_beyond_the_servers_memory_limit_move_out(tmp_path: Path) -> None:
    """An earlier store holding more portrait bytes than the server's DuckDB memory limit
    (a real ship's ID photos) still migrates: every portrait reaches its file."""
    server_db = unpack(COMMITS[-1], "server", tmp_path)
    jpegs = [b"\xff\xd8\xff" + os.urandom(20_000) for _ in range(2_500)]  # ~50 MB
    rows = pa.table(
        {
            "sha256": [hashlib.sha256(jpeg).hexdigest() for jpeg in jpegs],
            "profile_id": [f"X{number:07d}" for number in range(len(jpegs))],
            "jpeg": jpegs,
        }
    )
    with duckdb.connect(str(server_db)) as db:
        first = db.sql("SELECT coalesce(max(_seq), 0) + 1 FROM pictures").fetchall()[0][0]
        db.register("added", rows)
        db.execute("INSERT INTO pictures SELECT *, $1 + row_number() OVER () FROM added", [first])
    store = open_server_store(server_db, tmp_path / "portraits")
    store.close()
    with duckdb.connect(str(server_db), read_only=True) as db:
        assert db.sql("SELECT count(*) FROM pictures WHERE jpeg IS NOT NULL").fetchall() == [(0,)]
    files = {path.stem for path in (tmp_path / "portraits").rglob("*.jpg")}
    assert set(rows["sha256"].to_pylist()) <= files
