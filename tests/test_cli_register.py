"""``muster register``: one JSON object, the outbox, offline queueing, and surviving kill -9
(docs/architecture.md, 'Command line')."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from sync_core.server.process import ServerProcess
from tests.cli import closed_port_url, muster_register, muster_sync, two_people


def _outbox(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db)) as con:
        return con.sql(
            "SELECT profile_id, upload_state FROM registrations ORDER BY registered_utc"
        ).fetchall()


def test_register_online_then_again_is_already_registered(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    (card, profile_id, station), _ = two_people(ship_dir)
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    code, report = muster_register(own_server.url, device_store_path, card, station)
    assert code == 0, report
    assert (report["result"], report["profile_id"], report["pending_upload"]) == ("registered", profile_id, 0)
    code, again = muster_register(own_server.url, device_store_path, f" {card} ", station)
    assert (code, again["result"], again["registration_id"]) == (0, "already registered", None)
    assert _outbox(device_store_path) == [(profile_id, "sent")]


def test_wrong_station_unknown_card_and_bad_station(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    (card, _, station), (other_card, _, _) = two_people(ship_dir)
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    code, report = muster_register(own_server.url, device_store_path, other_card, station)
    assert (code, report["result"]) == (1, "refused")  # handling mode 2 without --force
    assert "Assigned to" in report["error"]
    code, report = muster_register(own_server.url, device_store_path, other_card, station, "--force")
    assert (code, report["result"]) == (0, "registered")
    code, report = muster_register(own_server.url, device_store_path, "0000000000", station)
    assert (code, report["result"]) == (1, "unknown card")
    code, report = muster_register(own_server.url, device_store_path, "12\x1b[2J", station)
    assert (code, report["result"]) == (1, "unknown card") and "\x1b" not in report["error"]
    code, report = muster_register(own_server.url, device_store_path, card, "NOPE")
    assert code == 1 and report["result"] is None and "NOPE" in report["error"]


def test_offline_registration_queues_and_the_next_sync_uploads_it(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    (card, profile_id, station), _ = two_people(ship_dir)
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    code, report = muster_register(closed_port_url(), device_store_path, card, station)
    assert (code, report["result"], report["pending_upload"]) == (0, "registered", 1), report
    assert _outbox(device_store_path) == [(profile_id, "pending")]
    code, synced = muster_sync(own_server.url, device_store_path)
    assert code == 0, synced
    assert synced["upload"] == {"status": "Success", "pending": 0, "sent": 1, "failed": 0}


def test_never_synced_and_offline_registers_nothing(ship_dir: Path, device_store_path: Path) -> None:
    (card, _, station), _ = two_people(ship_dir)
    code, report = muster_register(closed_port_url(), device_store_path, card, station)
    assert code == 1 and report["result"] is None
    assert "unreachable" in report["error"]


_KILL_TARGET = """
import asyncio, sys
from datetime import UTC
from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, sign_in
from sync_core.device.registrar import Post, Registrar
from sync_core.protocol import SafetyMode

async def main(url, db, card, station):
    store = DeviceStore(db)
    async with ServerClient(url) as client:
        session = await sign_in(client, store, "demo", "demo")
        post = Post("demo", SafetyMode.GENASS, station, SystemClock(), UTC)
        registrar = await Registrar.for_session(store, client, session, lambda: None, post)
        outcome = await registrar.scan(card)
        print(outcome.result.value, flush=True)
        await asyncio.sleep(600)

asyncio.run(main(*sys.argv[1:]))
"""


def test_a_registration_confirmed_before_kill_9_survives_and_uploads(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path, tmp_path: Path
) -> None:
    """The registering process is killed right after it confirmed (offline, so the item is
    still in the outbox); the next run finds it and uploads it."""
    (card, profile_id, station), _ = two_people(ship_dir)
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    target = tmp_path / "kill_target.py"
    target.write_text(_KILL_TARGET)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    with subprocess.Popen(
        [sys.executable, str(target), closed_port_url(), str(device_store_path), card, station],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "registered"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    assert _outbox(device_store_path) == [(profile_id, "pending")]
    code, synced = muster_sync(own_server.url, device_store_path)
    assert (code, synced["upload"]["sent"], synced["upload"]["pending"]) == (0, 1, 0)


def test_a_frozen_server_does_not_hold_a_registration_up(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    """SIGSTOP, not refused: the probe round decides the device is offline, the synced
    users sign the crew member in and the registration queues at once (it took 15.6 s)."""
    (card, profile_id, station), _ = two_people(ship_dir)
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    assert own_server.process is not None
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code, report = muster_register(own_server.url, device_store_path, card, station)
        elapsed = time.monotonic() - started
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    assert (code, report["result"]) == (0, "registered"), report
    assert report["pending_upload"] >= 1
    assert _outbox(device_store_path) == [(profile_id, "pending")]
    assert elapsed < 10, elapsed  # a hang detector: the bound itself is measured by the bench
