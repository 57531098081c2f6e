"""The server's import: batch by batch, and an import cut short is made again whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sync_core.protocol import DATASETS
from sync_core.server.store import open_server_store

ON_BOTH_ENGINES = True


def test_an_import_cut_short_is_made_again(
    ship_dir: Path, tmp_path: Path, new_server_db: Any, monkeypatch: Any
) -> None:
    db = new_server_db(tmp_path)
    store = open_server_store(db, tmp_path / "portraits")
    monkeypatch.setattr("sync_core.server.store.IMPORT_BATCH_BYTES", 4096)  # many batches
    calls = 0
    real_append = type(store)._append

    def append_then_die(self: Any, cur: Any, key: str, table: Any) -> None:
        nonlocal calls
        calls += 1
        if key == "pictures":
            raise KeyboardInterrupt  # the process stops mid-import
        real_append(self, cur, key, table)

    monkeypatch.setattr(type(store), "_append", append_then_die)
    try:
        store.import_ship(ship_dir)
    except KeyboardInterrupt:
        pass
    store.close()
    assert calls > len(DATASETS)  # it was going batch by batch
    monkeypatch.setattr(type(store), "_append", real_append)
    again = open_server_store(db, tmp_path / "portraits")
    assert not again.imported
    counts = again.import_ship(ship_dir)
    expected = {key: pq.ParquetFile(ship_dir / f"{key}.parquet").metadata.num_rows for key in DATASETS}
    assert counts == expected == again.counts()
    snapshot = again.snapshot()
    assert snapshot.cursor == sum(expected.values())
    again.close()
