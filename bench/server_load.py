"""Steady load on one server: many devices polling the delta and uploading registrations.

Each simulated device talks through the real client (:class:`ServerClient`), with a
session of its own connection and the token of one sign-in (a sign-in burst is another
benchmark's), takes its cursor from a snapshot manifest, then once per
``poll_interval`` seconds asks for the changes after its cursor (every page of them) and
uploads its next registrations; every ``REPLAY_EVERY``-th upload also sends the one before
it again, as a device does when an answer was lost (it must be answered "already
applied"). The office changes a lifeboat every ``OFFICE_EVERY`` seconds, so polls also
fetch real pages. A registration not acknowledged stays with its device and goes again on
its next tick; after the run every device sends what it still holds.

``python -m bench.server_load --store duckdb|postgresql`` runs the ``server_200_devices``
line of ``make bench`` (README, "Benchmark"): 200 devices, 10,000 registrations over 60 s,
and prints ``{"name", "store", "devices", "seconds" (p99 over endpoints: the worst
endpoint's p99), "p50", "p99" per endpoint, "errors", "lost", "duplicated",
"registrations", "requests", "server_cpu_seconds" (the server's CPU over the load, sign-ins
and snapshots of the devices joining included), "server_cpu_ms_per_request" (that over
``requests``: unlike the wall times, it does not depend on the machine's other load),
"postgres_cpu_seconds" (its processes' CPU over the load), "devices_cpu_seconds" (the
simulated devices' own, on the same cores), "server_peak_rss_mb" (the
load's: the ship is imported by a server process before), "postgres_pss_mb"}``
(PostgreSQL's memory at the end of the load: :func:`bench.stores.postgres_pss_mb`).
``tests/test_server_load.py`` runs the same load at 40 devices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import uuid6

from bench.stores import ENGINES
from sync_core.device.client import ServerClient
from sync_core.errors import SyncError
from sync_core.protocol import (
    ItemOutcome,
    RecordChange,
    Registration,
    RegistrationAction,
    SafetyMode,
)

PAGE = 1000
REPLAY_EVERY = 10
OFFICE_EVERY = 2.0


@dataclass
class LoadResult:
    """What a run measured: seconds per request by endpoint, failed requests or items, the
    registration ids made (each must be on the server once) and the requests sent."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    made: list[str] = field(default_factory=list)
    requests: int = 0

    def timed(self, endpoint: str, seconds: float) -> None:
        self.latencies[endpoint].append(seconds)
        self.requests += 1


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[max(0, math.ceil(pct / 100 * len(ranked)) - 1)]


def plan(devices: int, registrations: int, profiles: list[str], station: str) -> list[list[Registration]]:
    """``registrations`` registrations of ``profiles`` at ``station``, dealt to ``devices``."""
    rng = random.Random(7)
    dealt: list[list[Registration]] = [[] for _ in range(devices)]
    for n in range(registrations):
        dealt[n % devices].append(
            Registration(
                registration_id=str(uuid6.uuid7()),
                profile_id=rng.choice(profiles),
                action=RegistrationAction.REGISTER,
                safety_mode=SafetyMode.GENASS,
                muster_station=station,
                registered_at=datetime.now(UTC),
                username="demo",
                device_id=f"load-{n % devices:03d}",
            )
        )
    return dealt


class Device:
    """One simulated handheld: its client, cursor, and the registrations it still holds."""

    def __init__(self, url: str, todo: list[Registration], per_tick: int, result: LoadResult) -> None:
        self.client = ServerClient(url)
        self.todo = list(todo)
        self.per_tick = per_tick
        self.result = result
        self.cursor = 0
        self.uploads = 0
        self.last: list[Registration] = []

    async def join(self, token: str) -> None:
        """Take ``token`` (a crew session) and the cursor of the current snapshot."""
        self.client.token = token
        self.cursor = (await self.client.create_snapshot()).cursor

    async def _timed(self, endpoint: str, call: object) -> object:
        started = time.perf_counter()
        try:
            answer = await call  # type: ignore[misc]
        except SyncError:
            self.result.errors += 1
            self.result.timed(endpoint, time.perf_counter() - started)
            return None
        self.result.timed(endpoint, time.perf_counter() - started)
        return answer

    async def poll(self) -> None:
        more = True
        while more:
            page = await self._timed("changes", self.client.fetch_changes(self.cursor, PAGE))
            if page is None:
                return
            self.cursor, more = page.cursor, page.more  # type: ignore[attr-defined]

    async def upload(self, count: int) -> None:
        batch = self.todo[:count]
        if not batch:
            return
        self.uploads += 1
        replay = self.last if self.uploads % REPLAY_EVERY == 0 else []
        receipt = await self._timed("registrations", self.client.post_registrations(replay + batch))
        if receipt is None:
            return
        done = set()
        for item in receipt.results:  # type: ignore[attr-defined]
            if item.outcome is ItemOutcome.REJECTED:
                self.result.errors += 1
            else:
                done.add(item.registration_id)
        self.todo = [reg for reg in self.todo if reg.registration_id not in done]
        self.last = [reg for reg in batch if reg.registration_id in done]

    async def run(self, start: float, seconds: float, interval: float) -> None:
        phase = random.random() * interval  # devices do not tick in step, and keep apart
        await asyncio.sleep(phase)
        tick = 0
        while time.perf_counter() - start < seconds:
            await self.poll()
            await self.upload(self.per_tick)
            tick += 1
            next_at = start + phase + tick * interval + random.random() * interval * 0.1
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        while self.todo:  # what is left goes now (only after failed uploads)
            before = len(self.todo)
            await self.upload(len(self.todo))
            if len(self.todo) == before:
                await asyncio.sleep(interval)


async def office(url: str, start: float, seconds: float, result: LoadResult) -> None:
    """The ship's office changes lifeboat LB01's description every ``OFFICE_EVERY`` seconds."""
    async with ServerClient(url) as client:
        await client.sign_in("office", "office")
        n = 0
        while time.perf_counter() - start < seconds:
            n += 1
            change = RecordChange(key="lifeboats", id="LB01", op="set", fields={"description": f"Aft {n}"})
            started = time.perf_counter()
            try:
                await client.post_changes([change])
            except SyncError:
                result.errors += 1
            result.timed("admin_changes", time.perf_counter() - started)
            await asyncio.sleep(OFFICE_EVERY)


async def run_load(
    url: str,
    devices: int,
    registrations: int,
    seconds: float,
    profiles: list[str],
    station: str,
    interval: float = 1.0,
) -> LoadResult:
    """``devices`` devices against the server at ``url`` for ``seconds`` (see the module)."""
    result = LoadResult()
    dealt = plan(devices, registrations, profiles, station)
    result.made = [reg.registration_id for todo in dealt for reg in todo]
    ticks = max(1, int(seconds / interval) - 1)
    fleet = [Device(url, todo, max(1, math.ceil(len(todo) / ticks)), result) for todo in dealt]
    try:
        async with ServerClient(url) as crew:
            token = (await crew.sign_in("demo", "demo")).token
        await asyncio.gather(*(device.join(token) for device in fleet))
        start = time.perf_counter()
        await asyncio.gather(
            office(url, start, seconds, result), *(device.run(start, seconds, interval) for device in fleet)
        )
    finally:
        await asyncio.gather(*(device.client.aclose() for device in fleet))
    return result


def tally(db_rows: list[tuple[str, int]], made: list[str]) -> tuple[int, int]:
    """``(lost, duplicated)``: ids made that the server lacks, ids it holds more than once."""
    held = dict(db_rows)
    return sum(1 for rid in made if rid not in held), sum(1 for count in held.values() if count > 1)


def summary(store: str, devices: int, result: LoadResult, lost: int, duplicated: int) -> dict:
    """The figures of a run (see the module)."""
    latencies = sorted(result.latencies.items())
    p99 = {endpoint: round(percentile(values, 99), 4) for endpoint, values in latencies}
    p50 = {endpoint: percentile(values, 50) for endpoint, values in latencies}
    return {
        "store": store,
        "devices": devices,
        "seconds": max(p99.values(), default=0.0),
        "p50": round(max(p50.values(), default=0.0), 4),
        "p99": p99,
        "errors": result.errors,
        "lost": lost,
        "duplicated": duplicated,
        "registrations": len(result.made),
        "requests": result.requests,
    }


def main() -> None:
    """Run the load on a new server store of ``--store`` (a ship of ``bench/.data``) and print
    its line; the server's peak RSS is read from /proc before it stops."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=ENGINES, default="duckdb")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--registrations", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    from bench.run import ensure_ship

    ship = ensure_ship()
    line = asyncio.run(measure(ship, args.store, args.devices, args.registrations, args.seconds))
    print(json.dumps({"name": f"server_{args.devices}_devices", **line}), flush=True)


async def measure(ship: Path, store: str, devices: int, registrations: int, seconds: float) -> dict:
    """A server on a new store of ``store`` over ``ship``, loaded by :func:`run_load`; the
    summary with its peak RSS (and PostgreSQL's memory)."""
    import pyarrow.parquet as pq

    from bench.rss import cpu_seconds, peak_rss_mb
    from bench.stores import new_store, postgres_cpu_seconds, postgres_pss_mb, store_server
    from fixtures.postgres import read_store

    profiles = pq.read_table(ship / "reservations.parquet", columns=["profile_id"]).column(0).to_pylist()
    station = pq.read_table(ship / "muster_stations.parquet", columns=["code"]).column(0)[0].as_py()
    with new_store(store) as (work, db, cluster):
        with store_server(ship, db, work):  # the import, apart from the load
            pass
        server = store_server(ship, db, work)
        server.start()
        try:
            assert server.process is not None
            cpu_before = cpu_seconds(server.process.pid), postgres_cpu_seconds(cluster) if cluster else 0.0
            own_cpu = time.process_time()
            result = await run_load(server.url, devices, registrations, seconds, profiles, station)
            own_cpu = time.process_time() - own_cpu
            cpu = cpu_seconds(server.process.pid) - cpu_before[0]
            postgres_cpu = postgres_cpu_seconds(cluster) - cpu_before[1] if cluster else None
            peaks = {
                "server_cpu_seconds": round(cpu, 2),
                "server_cpu_ms_per_request": round(1000 * cpu / max(1, result.requests), 3),
                "postgres_cpu_seconds": None if postgres_cpu is None else round(postgres_cpu, 2),
                "devices_cpu_seconds": round(own_cpu, 2),
                "server_peak_rss_mb": peak_rss_mb(server.process.pid),
                "postgres_pss_mb": postgres_pss_mb(cluster) if cluster else None,
            }
        finally:
            server.stop()
        rows = read_store(db, "SELECT registration_id, count(*) FROM registrations GROUP BY 1")
    lost, duplicated = tally(rows, result.made)
    return summary(store, devices, result, lost, duplicated) | peaks


if __name__ == "__main__":
    main()
