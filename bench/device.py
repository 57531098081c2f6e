"""The device side of the full-sync benchmark, run as its own process for its peak RSS.

``python -m bench.device sync --server URL --runs N [--portraits]`` signs in once, then N
times: a fresh device store and a full sync timed from the first data request (token held,
connection open) to commit. ``python -m bench.device floor --ship DIR --runs N
[--portraits]`` times the floor: DuckDB loading the same rows (and pictures) from the local
Parquet files into the same tables and swapping them in. ``python -m bench.device delta
--server URL --runs N --case empty|100_10|100_pictures`` syncs once, then per run has the
office make the case's changes (outside the interval) and times one delta sync. Each prints
one JSON object: ``seconds`` per run and the process's ``peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from fixtures.portraits import portrait
from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.session import sign_in
from sync_core.device.store import SyncPoint
from sync_core.key_slots import new_data_key, open_slot
from sync_core.protocol import DATASETS, RecordChange, SyncState, wire_columns


async def timed_syncs(url: str, runs: int, portraits: bool, work: Path) -> list[float]:
    """Seconds of each full sync, from first data request to commit."""
    seconds = []
    async with ServerClient(url) as client:
        answer = await client.sign_in("demo", "demo")
        data_key = open_slot(answer.key_slot or "", "demo")  # as a sign-in on the device does
        await client.health()  # opens the connection outside the timed interval
        for run in range(runs):
            store = DeviceStore(work / f"sync-{run}.duckdb")
            store.unlock(data_key)
            engine = SyncEngine(store, client, SystemClock())
            started = time.perf_counter()
            status = await engine.full_sync(portraits=portraits)
            seconds.append(time.perf_counter() - started)
            store.close()
            if status.status is not SyncState.SUCCESS:
                raise SystemExit(f"sync failed: {status.error}")
    return seconds


async def timed_deltas(url: str, runs: int, case: str, work: Path) -> list[float]:
    """Seconds of each delta sync after the office made ``case``'s changes."""
    seconds = []
    store = DeviceStore(work / "delta.duckdb")
    async with ServerClient(url) as client, ServerClient(url) as office:
        session = await sign_in(client, store, "demo", "demo")
        await office.sign_in("office", "office")
        engine = SyncEngine(store, client, SystemClock())
        await engine.sync(session.server_id)
        for run in range(runs):
            await CASES[case](office, store, run)
            started = time.perf_counter()
            status = await engine.delta_sync()
            seconds.append(time.perf_counter() - started)
            if status.status is not SyncState.SUCCESS or status.kind != "delta":
                raise SystemExit(f"delta failed: {status.error}")
    store.close()
    return seconds


def _profiles(store: DeviceStore, count: int, offset: int) -> list[str]:
    with store.db.cursor() as cur:
        rows = cur.execute(
            "SELECT profile_id FROM reservations ORDER BY profile_id LIMIT ? OFFSET ?", [count, offset]
        ).fetchall()
    return [row[0] for row in rows]


async def _no_changes(office: ServerClient, store: DeviceStore, run: int) -> None:
    return None


async def _updates_and_deletes(office: ServerClient, store: DeviceStore, run: int) -> None:
    """100 profiles updated and 10 deleted."""
    ids = _profiles(store, 110, 200 * run)
    changes = [
        RecordChange(key="reservations", id=pid, op="set", fields={"cabin": f"R{run}"}) for pid in ids[:100]
    ]
    changes += [RecordChange(key="reservations", id=pid, op="delete") for pid in ids[100:]]
    await office.post_changes(changes)


async def _new_pictures(office: ServerClient, store: DeviceStore, run: int) -> None:
    """100 profiles get a new portrait."""
    rng = random.Random(run)
    for pid in _profiles(store, 100, 100 * run):
        await office.put_picture(pid, portrait(rng, f"{pid}-{run}", uniform=False))


CASES = {"empty": _no_changes, "100_10": _updates_and_deletes, "100_pictures": _new_pictures}


def floor_load(ship: Path, path: Path, portraits: bool) -> float:
    """Seconds for the store to take the ship's Parquet files (sealed as a sync seals them) into
    a fresh store and swap them in."""
    store = DeviceStore(path)
    store.unlock(new_data_key())
    started = time.perf_counter()
    store.begin_staging()
    for key in DATASETS:
        source = ship / f"{key}.parquet"
        if key == "pictures":
            store.stage_picture_index(pq.read_table(source, columns=list(wire_columns(key))))
            if portraits:
                store.stage(key, pq.read_table(source))
        else:
            store.stage(key, pq.read_table(source, columns=list(wire_columns(key))))
    store.swap_in(SyncPoint("floor", "file", 0, None), {}, datetime.now(UTC))
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sync", "floor", "delta"])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--server")
    parser.add_argument("--ship", type=Path)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--portraits", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.mode == "sync":
            seconds = asyncio.run(timed_syncs(args.server, args.runs, args.portraits, work))
        elif args.mode == "delta":
            seconds = asyncio.run(timed_deltas(args.server, args.runs, args.case, work))
        else:
            seconds = [
                floor_load(args.ship, work / f"floor-{run}.duckdb", args.portraits)
                for run in range(args.runs)
            ]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak_rss_mb, 1)}))


if __name__ == "__main__":
    main()
