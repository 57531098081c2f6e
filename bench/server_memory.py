"""The server's peak memory importing and serving a ship, as a process of its own.

``python -m bench.server_memory --ship DIR [--store duckdb|postgresql] [--devices N]``
starts ``muster server`` on a new store (it imports DIR), then serves ``N`` devices' full
syncs one after another, pictures included (a snapshot, every dataset, every portrait in
batches of ``PICTURE_BATCH``; the bytes are read and dropped: the device side is not
measured here), and prints ``{"name": "server_memory", "store", "profiles",
"import_seconds", "serve_seconds", "server_peak_rss_mb", "postgres_pss_mb"}``: the server
process's own high-water mark (VmHWM from /proc), never a child's ``ru_maxrss``, and
PostgreSQL's memory after serving (:func:`bench.stores.postgres_pss_mb`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import pyarrow as pa

from bench.rss import peak_rss_mb
from bench.stores import ENGINES, new_store, postgres_pss_mb, store_server
from sync_core.device.client import ServerClient
from sync_core.protocol import DATASETS

PICTURE_BATCH = 200  # the device's own batch of portraits


async def full_syncs(url: str, devices: int) -> int:
    """``devices`` full syncs with pictures, one after another; the profiles served last."""
    profiles = 0
    async with ServerClient(url) as client:
        await client.sign_in("demo", "demo")
        for _ in range(devices):
            manifest = await client.create_snapshot()
            tables = {
                key: await client.fetch_snapshot(manifest.snapshot_id, key, pa.RecordBatchReader.read_all)
                for key in DATASETS
            }
            hashes = tables["pictures"].column("sha256").to_pylist()
            for start in range(0, len(hashes), PICTURE_BATCH):
                asked = hashes[start : start + PICTURE_BATCH]
                await client.fetch_pictures(asked, pa.RecordBatchReader.read_all)
            profiles = tables["reservations"].num_rows
    return profiles


def measure(ship: Path, store: str, devices: int) -> dict:
    """Import ``ship`` into a new ``store`` and serve it (see the module)."""
    with new_store(store) as (work, db, cluster):
        server = store_server(ship, db, work, start_timeout=1800)
        started = time.perf_counter()
        server.start()
        imported = time.perf_counter()
        try:
            profiles = asyncio.run(full_syncs(server.url, devices))
            served = time.perf_counter()
            assert server.process is not None
            server_peak = peak_rss_mb(server.process.pid)
            postgres = postgres_pss_mb(cluster) if cluster is not None else None
        finally:
            server.stop()
    return {
        "name": "server_memory",
        "store": store,
        "profiles": profiles,
        "import_seconds": round(imported - started, 1),
        "serve_seconds": round(served - imported, 1),
        "server_peak_rss_mb": server_peak,
        "postgres_pss_mb": postgres,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ship", type=Path, required=True)
    parser.add_argument("--store", choices=ENGINES, default="duckdb")
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.ship, args.store, args.devices)), flush=True)


if __name__ == "__main__":
    main()
