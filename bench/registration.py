"""The device side of the registration benchmarks (issue 4), run as a process of its own.

``python -m bench.registration upload --server URL --runs N``: a synced device queues 500
registrations in its outbox, then per run the uploader sends and clears them; the time is
from the first upload request (token held, connection open) to the outbox commit that
clears them. Prints ``{"seconds": [...], "peak_rss_mb"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from datetime import UTC
from pathlib import Path

from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.registrar import Post, Registrar
from sync_core.device.upload import Uploader
from sync_core.protocol import REGISTRATION_BATCH_MAX, SafetyMode, SyncState

UPLOAD_SIZE = REGISTRATION_BATCH_MAX


async def _queue(store: DeviceStore, registrar: Registrar, offset: int) -> None:
    """Register ``UPLOAD_SIZE`` people (registrations go to the outbox)."""
    with store.db.cursor() as cur:
        rows = cur.execute(
            "SELECT board_card_number FROM reservations ORDER BY profile_id LIMIT ? OFFSET ?",
            [UPLOAD_SIZE, offset],
        ).fetchall()
    for (card,) in rows:
        await registrar.scan(card, force=True)


async def timed_uploads(url: str, runs: int, work: Path) -> list[float]:
    """Seconds of each upload of ``UPLOAD_SIZE`` queued registrations."""
    seconds = []
    store = DeviceStore(work / "upload.duckdb")
    clock = SystemClock()
    async with ServerClient(url) as client:
        session = await client.sign_in("demo", "demo")
        engine = SyncEngine(store, client, clock)
        if (await engine.sync(session.server_id)).status is not SyncState.SUCCESS:
            raise SystemExit("full sync failed")
        uploader = Uploader(store.outbox, client, clock, session.server_id, lambda _: None)
        station = (await client.places(SafetyMode.GENASS))[0].code
        post = Post("demo", SafetyMode.GENASS, station, clock, UTC)
        registrar = await Registrar.on_device(store, None, session.server_id, lambda: None, post)
        for run in range(runs):
            await _queue(store, registrar, UPLOAD_SIZE * run)
            started = time.perf_counter()
            status = await uploader.drain()
            seconds.append(time.perf_counter() - started)
            if status.pending or status.failed:
                raise SystemExit(f"upload left {status.pending} pending, {status.failed} failed")
    store.close()
    return seconds


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["upload"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seconds = asyncio.run(timed_uploads(args.server, args.runs, Path(tmp)))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak_rss_mb, 1)}))


if __name__ == "__main__":
    main()
