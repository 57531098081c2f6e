"""The device side of the sync benchmarks, run as its own process for its peak RSS.

``python -m bench.device sync --server URL --runs N [--portraits]`` signs in once, then N
times: a fresh device store and a full sync timed from the first data request (token held,
connection open) to commit. ``python -m bench.device floor --ship DIR --runs N
[--portraits]`` times the floor: DuckDB loading the same rows from the local Parquet files
into the same tables (and each portrait copied from them into its file, as the device keeps
them) and swapping them in. ``python -m bench.device delta --server URL --runs N --case
CASE [--portrait-kb K]`` syncs once, then per run has the office make the case's changes
(outside the interval; new portraits of about K KB) and times one sync: a delta (cases
``empty``, ``100_10``, ``100_pictures``, ``500_pictures``) or Sync Now's full sync on a
device that holds everything (``sync_now``); it also gives ``first_sync_seconds``, its
first (full, with portraits) sync. ``python -m bench.device fallback --server URL --store
PATH`` signs in and syncs the device store at PATH once, timed: a full sync the first time,
then (once the server dropped the tombstones past its cursor) a delta the server answers
with 410, which turns into a full sync; then the office changes one profile, so the next
drop passes the new cursor. Each prints one JSON object: ``seconds`` per run and the
process's ``peak_rss_mb`` (``fallback`` adds the ``kind`` of its sync). What a device does not
load is loaded only by the modes that use it (the floor's Parquet reader, ~4 MB; the office's
photo drawing, ~3 MB), so the peak is the device's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.rss import peak_rss_mb
from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.arrow_rows import ArrowRows
from sync_core.device.session import sign_in
from sync_core.device.status import SyncKind, SyncStatus
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


async def timed_deltas(
    url: str, runs: int, case: str, work: Path, portrait_kb: int | None
) -> tuple[float, list[float]]:
    """Seconds of the first sync (a full sync with portraits, from the call on) and of each
    sync after the office made ``case``'s changes."""
    seconds = []
    prepare, kind = CASES[case]
    store = DeviceStore(work / "delta.duckdb")
    async with ServerClient(url) as client, ServerClient(url) as office:
        session = await sign_in(client, store, "demo", "demo")
        await office.sign_in("office", "office")
        engine = SyncEngine(store, client, SystemClock())
        first_seconds, _ = await _timed_sync(engine, session.server_id)
        for run in range(runs):
            await prepare(office, store, run, portrait_kb)
            run_seconds, status = await _timed_sync(engine, session.server_id, full=kind == "full")
            if status.kind != kind:
                raise SystemExit(f"a {status.kind} sync where a {kind} sync was expected")
            seconds.append(run_seconds)
    store.close()
    return first_seconds, seconds


async def _timed_sync(
    engine: SyncEngine, server_id: str | None, full: bool = False
) -> tuple[float, SyncStatus]:
    """Seconds (from the call on) and status of one :meth:`SyncEngine.sync`; exits when it fails."""
    started = time.perf_counter()
    status = await engine.sync(server_id, full=full)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    if status.status is not SyncState.SUCCESS:
        raise SystemExit(f"{status.kind} sync failed: {status.error}")
    return seconds, status


async def fallback_sync(url: str, path: Path) -> tuple[float, SyncKind | None]:
    """Seconds and kind of one sync of the device store at ``path`` after a sign-in (see
    the module); then the office changes one profile's cabin."""
    store = DeviceStore(path)
    async with ServerClient(url) as client, ServerClient(url) as office:
        session = await sign_in(client, store, "demo", "demo")
        seconds, status = await _timed_sync(SyncEngine(store, client, SystemClock()), session.server_id)
        await office.sign_in("office", "office")
        (profile,) = _profiles(store, 1, 0)
        await office.post_changes(
            [RecordChange(key="reservations", id=profile, op="set", fields={"cabin": "F1"})]
        )
    store.close()
    return seconds, status.kind


def _profiles(store: DeviceStore, count: int, offset: int) -> list[str]:
    with store.db.cursor() as cur:
        rows = cur.execute(
            "SELECT profile_id FROM reservations ORDER BY profile_id LIMIT ? OFFSET ?", [count, offset]
        ).fetchall()
    return [row[0] for row in rows]


async def _no_changes(office: ServerClient, store: DeviceStore, run: int, portrait_kb: int | None) -> None:
    return None


async def _updates_and_deletes(
    office: ServerClient, store: DeviceStore, run: int, portrait_kb: int | None
) -> None:
    """100 profiles updated and 10 deleted."""
    ids = _profiles(store, 110, 200 * run)
    changes = [
        RecordChange(key="reservations", id=pid, op="set", fields={"cabin": f"R{run}"}) for pid in ids[:100]
    ]
    changes += [RecordChange(key="reservations", id=pid, op="delete") for pid in ids[100:]]
    await office.post_changes(changes)


async def _new_pictures(
    count: int, office: ServerClient, store: DeviceStore, run: int, portrait_kb: int | None
) -> None:
    """``count`` profiles get a new portrait (an ID photo of about ``portrait_kb`` KB, or small)."""
    from fixtures.portraits import IdPhotos, portrait  # not the device's

    rng = random.Random(run)
    draw = portrait if portrait_kb is None else IdPhotos(portrait_kb)
    for pid in _profiles(store, count, count * run):
        await office.put_picture(pid, draw(rng, f"{pid}-{run}", uniform=False))


Prepare = Callable[[ServerClient, DeviceStore, int, "int | None"], Awaitable[None]]
# Each case: what the office does before a run, and the sync the run times.
CASES: dict[str, tuple[Prepare, SyncKind]] = {
    "empty": (_no_changes, "delta"),
    "100_10": (_updates_and_deletes, "delta"),
    "100_pictures": (functools.partial(_new_pictures, 100), "delta"),
    "500_pictures": (functools.partial(_new_pictures, 500), "delta"),
    "sync_now": (_no_changes, "full"),
}


def floor_load(ship: Path, path: Path, portraits: bool) -> float:
    """Seconds for the store to take the ship's Parquet files into a fresh store (personal
    fields sealed, as a sync must) and swap them in; with ``portraits``, each portrait is
    copied from the Parquet file (a row group at a time) into its file too."""
    import pyarrow.parquet as pq  # not the device's

    store = DeviceStore(path)
    store.unlock(new_data_key())
    started = time.perf_counter()
    store.begin_staging()
    for key in DATASETS:
        source = ship / f"{key}.parquet"
        rows = _device_rows(pq.read_table(source, columns=list(wire_columns(key))))
        if key == "pictures":
            if portraits:  # a rows-only full sync has no portraits
                store.stage_picture_index(rows)
        else:
            store.stage(key, rows)
    if portraits:
        pictures = pq.ParquetFile(ship / "pictures.parquet")
        for group in range(pictures.num_row_groups):
            batch = pictures.read_row_group(group, columns=["sha256", "jpeg"])
            jpegs = batch.column("jpeg")
            for at, sha256 in enumerate(batch.column("sha256").to_pylist()):
                store.keep_portrait(sha256, jpegs[at].as_py())
    store.swap_in(SyncPoint("floor", "file", 0, None), {}, datetime.now(UTC))
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def _device_rows(table: Any) -> list[ArrowRows]:
    """A pyarrow ``table``'s record batches as the device's client hands them to the store
    (nanoarrow arrays over the same buffers)."""
    import nanoarrow as na  # the floor's, as the client's

    stream = na.c_array_stream(table)
    return [ArrowRows(stream.get_schema(), [batch], tuple(table.column_names)) for batch in stream]


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sync", "floor", "delta", "fallback"])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--server")
    parser.add_argument("--ship", type=Path)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--portraits", action="store_true")
    parser.add_argument("--portrait-kb", type=int)
    args = parser.parse_args()
    first: dict[str, float | str | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.mode == "sync":
            seconds = asyncio.run(timed_syncs(args.server, args.runs, args.portraits, work))
        elif args.mode == "fallback":
            seconds_once, first["kind"] = asyncio.run(fallback_sync(args.server, args.store))
            seconds = [seconds_once]
        elif args.mode == "delta":
            first["first_sync_seconds"], seconds = asyncio.run(
                timed_deltas(args.server, args.runs, args.case, work, args.portrait_kb)
            )
        else:
            seconds = [
                floor_load(args.ship, work / f"floor-{run}.duckdb", args.portraits)
                for run in range(args.runs)
            ]
    print(json.dumps({"seconds": seconds, **first, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
