"""The server's peak memory importing and serving a ship, as a process of its own.

``python -m bench.server_memory --ship DIR [--store duckdb|postgresql] [--devices N]``
starts ``muster server`` on a new store (it imports DIR), then serves ``N`` devices' full
syncs one after another, pictures included (a snapshot, every dataset, every portrait in
batches of ``PICTURE_BATCH``; the bytes are read and dropped: the device side is not
measured here), and prints ``{"name": "server_memory", "store", "profiles",
"import_seconds", "serve_seconds", "server_peak_rss_mb", "postgres_peak_rss_mb"}``: the
server process's own high-water mark (VmHWM from /proc), never a child's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from bench.server_load import postgres_peak_mb, vm_hwm_mb
from fixtures.postgres import Cluster
from sync_core.device.client import ServerClient
from sync_core.protocol import DATASETS
from sync_core.server.process import ServerProcess

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
                await client.fetch_pictures(hashes[start : start + PICTURE_BATCH])
            profiles = tables["reservations"].num_rows
    return profiles


def measure(ship: Path, store: str, devices: int) -> dict:
    """Import ``ship`` into a new ``store`` and serve it (see the module)."""
    with tempfile.TemporaryDirectory(prefix="muster-memory-") as work:
        cluster = Cluster() if store == "postgresql" else None
        try:
            db = str(Path(work) / "server.duckdb")
            if cluster is not None:
                cluster.start()
                db = cluster.new_database()
            server = ServerProcess(ship, db, Path(work) / "server.log", start_timeout=1800)
            started = time.perf_counter()
            server.start()
            imported = time.perf_counter()
            try:
                profiles = asyncio.run(full_syncs(server.url, devices))
                served = time.perf_counter()
                assert server.process is not None
                server_peak = vm_hwm_mb(server.process.pid)
                postgres_peak = postgres_peak_mb(cluster.port) if cluster is not None else None
            finally:
                server.stop()
        finally:
            if cluster is not None:
                cluster.stop()
    return {
        "name": "server_memory",
        "store": store,
        "profiles": profiles,
        "import_seconds": round(imported - started, 1),
        "serve_seconds": round(served - imported, 1),
        "server_peak_rss_mb": round(server_peak, 1),
        "postgres_peak_rss_mb": None if postgres_peak is None else round(postgres_peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ship", type=Path, required=True)
    parser.add_argument("--store", choices=("duckdb", "postgresql"), default="duckdb")
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.ship, args.store, args.devices)), flush=True)


if __name__ == "__main__":
    main()
