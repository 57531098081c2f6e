"""Steady load at a small scale: 40 devices poll the delta every second and upload
registrations (some replayed) while the office edits; nothing fails, and every registration
is on the server exactly once. Timings are the benchmark's (``bench.server_load``), not
asserted here; the loop is bounded by its seconds and its registration count."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from bench.server_load import REPLAY_EVERY, run_load, tally
from fixtures.postgres import read_store
from sync_core.server.process import ServerProcess

ON_BOTH_ENGINES = True
DEVICES, REGISTRATIONS, SECONDS = 40, 400, 5.0


async def test_forty_devices_lose_and_duplicate_nothing(own_server: ServerProcess, ship_dir: Path) -> None:
    profiles = pq.read_table(ship_dir / "reservations.parquet", columns=["profile_id"]).column(0).to_pylist()
    result = await run_load(own_server.url, DEVICES, REGISTRATIONS, SECONDS, profiles, "A")
    own_server.stop()
    rows = read_store(own_server.db, "SELECT registration_id, count(*) FROM registrations GROUP BY 1")
    assert result.errors == 0
    assert tally(rows, result.made) == (0, 0)
    assert len(rows) == REGISTRATIONS
    polls, uploads = len(result.latencies["changes"]), len(result.latencies["registrations"])
    assert polls >= DEVICES * (SECONDS - 2)  # every device polled about once a second
    assert uploads >= REGISTRATIONS / (REGISTRATIONS // DEVICES) and uploads >= REPLAY_EVERY
