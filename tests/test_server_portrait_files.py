"""The server keeps portraits as content-addressed files beside its store: the import and the
office write them, a deleted portrait's file goes when its delete commits, and a store made
before them has its portraits moved out by a migration (on both engines)."""

from __future__ import annotations

import hashlib
import io
import shutil
import stat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sync_core.duck import scalar_int
from sync_core.errors import ShipDataError, StoreUnusable
from sync_core.protocol import RecordChange
from sync_core.server.edits import apply_changes, replace_picture
from sync_core.server.store import ServerStore, open_server_store

ON_BOTH_ENGINES = True


def _served(store: ServerStore, hashes: list[str]) -> dict[str, bytes]:
    batches = list(store.pictures(hashes))
    table = pa.Table.from_batches(batches) if batches else pa.table({"sha256": [], "jpeg": []})
    return dict(zip(table.column("sha256").to_pylist(), table.column("jpeg").to_pylist(), strict=True))


def _ship_portraits(ship_dir: Path) -> dict[str, bytes]:
    table = pq.read_table(ship_dir / "pictures.parquet", columns=["sha256", "jpeg"])
    return dict(zip(table.column("sha256").to_pylist(), table.column("jpeg").to_pylist(), strict=True))


def _rows_with_bytes(store: ServerStore) -> int:
    with store.cursor() as cur:
        return scalar_int(cur, "SELECT count(*) FROM pictures WHERE jpeg IS NOT NULL")


def _jpeg(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 40), colour).save(out, "JPEG")
    return out.getvalue()


def test_the_import_writes_private_portrait_files_and_the_store_holds_none(
    ship_dir: Path, tmp_path: Path, new_server_db: Any
) -> None:
    portraits = tmp_path / "portraits"
    store = open_server_store(new_server_db(tmp_path), portraits)
    store.import_ship(ship_dir)
    try:
        expected = _ship_portraits(ship_dir)
        assert _rows_with_bytes(store) == 0
        assert _served(store, list(expected)) == expected
        files = [path for path in portraits.rglob("*") if path.is_file()]
        assert sorted(path.stem for path in files) == sorted(expected)
        modes = {stat.S_IMODE(path.stat().st_mode) for path in portraits.rglob("*")}
        assert modes == {0o700, 0o600}  # directories and files only for their owner
        assert stat.S_IMODE(portraits.stat().st_mode) == 0o700
    finally:
        store.close()


def test_a_replaced_or_deleted_portrait_loses_its_file_and_leaves_a_tombstone(
    server_store: ServerStore,
) -> None:
    with server_store.cursor() as cur:
        (first, old), (second, gone) = cur.execute(
            "SELECT profile_id, sha256 FROM pictures ORDER BY profile_id LIMIT 2"
        ).fetchall()
    new = _jpeg("red")
    new_sha = hashlib.sha256(new).hexdigest()
    replace_picture(server_store, first, new)
    apply_changes(server_store, [RecordChange(key="reservations", id=second, op="delete")])
    assert _served(server_store, [old, new_sha, gone]) == {new_sha: new}
    assert not server_store.portraits.path(old).exists() and not server_store.portraits.path(gone).exists()
    with server_store.cursor() as cur:
        tombstones = cur.execute("SELECT id FROM journal WHERE key = 'pictures' AND op = 'delete'").fetchall()
    assert sorted(row[0] for row in tombstones) == sorted([old, gone])


def test_a_store_made_before_portrait_files_moves_its_portraits_out(
    ship_dir: Path, tmp_path: Path, new_server_db: Any
) -> None:
    db, portraits = new_server_db(tmp_path), tmp_path / "portraits"
    store = open_server_store(db, portraits)
    store.import_ship(ship_dir)
    expected = _ship_portraits(ship_dir)
    with store.write() as cur:  # the shape an earlier release left: bytes in the store, no files
        for sha256, jpeg in expected.items():
            cur.execute("UPDATE pictures SET jpeg = $1 WHERE sha256 = $2", [jpeg, sha256])
        cur.execute("DELETE FROM schema_version WHERE version = 7")
    store.close()
    shutil.rmtree(portraits)
    migrated = open_server_store(db, portraits)
    try:
        assert _rows_with_bytes(migrated) == 0
        assert _served(migrated, list(expected)) == expected
        with migrated.cursor() as cur:
            assert scalar_int(cur, "SELECT max(version) FROM schema_version") == 7
    finally:
        migrated.close()


def test_a_missing_portrait_file_is_left_out_of_the_answer(server_store: ServerStore, ship_dir: Path) -> None:
    expected = _ship_portraits(ship_dir)
    lost, *kept = sorted(expected)
    server_store.portraits.path(lost).unlink()
    assert _served(server_store, [lost, *kept]) == {sha256: expected[sha256] for sha256 in kept}


def test_a_postgresql_store_needs_a_portraits_directory() -> None:
    with pytest.raises(StoreUnusable, match="--portraits DIR"):
        open_server_store("postgresql://muster@127.0.0.1:1/nowhere")


def test_a_pictures_file_damaged_in_the_middle_is_refused(
    ship_dir: Path, tmp_path: Path, new_server_db: Any
) -> None:
    ship = tmp_path / "ship"
    shutil.copytree(ship_dir, ship)
    pictures = ship / "pictures.parquet"
    damaged = bytearray(pictures.read_bytes())
    middle = len(damaged) // 2
    damaged[middle : middle + 4096] = bytes(4096)
    pictures.write_bytes(bytes(damaged))
    store = open_server_store(new_server_db(tmp_path), tmp_path / "portraits")
    try:
        with pytest.raises(ShipDataError, match=str(pictures)):
            store.import_ship(ship)
        assert not store.imported
    finally:
        store.close()
