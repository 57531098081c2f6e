"""``muster status --db FILE --json`` (docs/architecture.md, 'Command line'): probes now with the
server stored at the last sync, exit 0 online or offline, exit 1 when the store is held."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync_core.device import DeviceStore
from sync_core.protocol import DATASETS
from sync_core.server.process import ServerProcess
from tests.cli import closed_port_url, json_report, muster_register, muster_sync, run_muster, two_people

KEYS = {"mode", "dependencies", "sync", "upload", "outbox", "refused", "last_used", "days_to_wipe"}
DEPENDENCIES = {"network", "vpn", "server", "api", "db", "webapp"}
UNSET_VPN = {"state": "not configured", "reason": "no VPN probe target configured"}


def _run_status(db: Path, vpn: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    """``muster status --db DB``, probing the VPN at ``vpn`` (none when None); asserts it wrote
    nothing to stderr."""
    env = {k: v for k, v in os.environ.items() if k != "MUSTER_VPN_TARGET"}
    if vpn is not None:
        env["MUSTER_VPN_TARGET"] = vpn
    done = run_muster("status", "--db", str(db), *extra, timeout=60, env=env)
    assert not done.stderr, done.stderr
    return done


def muster_status(db: Path, vpn: str | None = None, *extra: str) -> tuple[int, str]:
    """``muster status``'s exit code and stdout."""
    done = _run_status(db, vpn, *extra)
    return done.returncode, done.stdout


def status_json(db: Path, vpn: str | None = None) -> tuple[int, dict]:
    """``muster status --json``'s exit code and report: an ``error`` alone, or every key and
    dependency with its state and reason."""
    done = _run_status(db, vpn, "--json")
    report = json_report(done)
    if "error" not in report:
        assert set(report) == KEYS
        assert set(report["dependencies"]) == DEPENDENCIES
        assert all(set(dep) == {"state", "reason"} for dep in report["dependencies"].values())
    return done.returncode, report


def states(report: dict) -> dict[str, str]:
    """Each dependency's state, by name."""
    return {name: dep["state"] for name, dep in report["dependencies"].items()}


def test_a_synced_device_with_the_server_up_is_online(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    assert muster_sync(live_server.url, device_store_path)[0] == 0
    code, report = status_json(device_store_path)
    assert code == 0
    assert report["mode"] == "online"
    assert states(report) == dict.fromkeys(DEPENDENCIES, "up") | {"vpn": "not configured"}
    assert report["dependencies"]["vpn"] == UNSET_VPN
    sync = report["sync"]
    assert sync["status"] == "Success" and sync["kind"] == "full" and sync["cursor"] is not None
    assert set(sync["datasets"]) == set(DATASETS)
    assert all(row["count"] > 0 for row in sync["datasets"].values())
    idle = {"status": "Not started", "pending": 0, "sent": 0, "failed": 0}
    assert report["upload"] == sync["upload"] == idle
    assert report["outbox"] == {"pending": 0, "sent": 0, "failed": 0}
    lines = muster_status(device_store_path)[1].splitlines()
    assert f"sync: Success (full), cursor {sync['cursor']}" in lines
    assert (
        lines[-1] == f"last used: {report['last_used']}; days to the retention wipe: {report['days_to_wipe']}"
    )


def test_the_vpn_target_comes_from_the_environment(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    assert muster_sync(live_server.url, device_store_path)[0] == 0
    with socket.create_server(("127.0.0.1", 0)) as vpn:  # the kernel accepts; nothing reads
        code, report = status_json(device_store_path, f"127.0.0.1:{vpn.getsockname()[1]}")
    assert (code, report["mode"]) == (0, "online")
    assert report["dependencies"]["vpn"] == {"state": "up", "reason": None}
    closed = closed_port_url().removeprefix("http://")
    code, report = status_json(device_store_path, closed)
    assert (code, report["mode"]) == (0, "offline")
    assert report["dependencies"]["vpn"] == {"state": "down", "reason": f"{closed}: Connection refused"}


def test_server_down_is_offline_with_the_outbox_waiting(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    own_server.stop()
    (card, _, station), _ = two_people(ship_dir)
    code, registered = muster_register(own_server.url, device_store_path, card, station)
    assert (code, registered["pending_upload"]) == (0, 1), registered
    code, report = status_json(device_store_path)
    assert (code, report["mode"]) == (0, "offline")
    assert states(report) == {
        "network": "up",
        "vpn": "not configured",
        "server": "down",
        "api": "down",
        "db": "down",
        "webapp": "down",
    }
    assert report["dependencies"]["server"]["reason"].endswith("Connection refused")
    assert report["outbox"] == {"pending": 1, "sent": 0, "failed": 0}
    assert report["upload"] == {"status": "Not started", "pending": 1, "sent": 0, "failed": 0}


def test_a_registration_refused_in_an_earlier_run_is_listed_and_fails_no_later_run(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    # The server refuses only items that are not valid registrations, which this device never
    # sends, so the earlier run's refusal is written into the outbox as that run would have.
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    (card, profile_id, station), _ = two_people(ship_dir)
    assert muster_register(closed_port_url(), device_store_path, card, station)[1]["pending_upload"] == 1
    store = DeviceStore(device_store_path)
    with store.db.cursor() as cur:
        cur.execute("UPDATE registrations SET upload_state = 'failed', failed_reason = 'refused (test)'")
    store.close()
    code, later = muster_sync(own_server.url, device_store_path)
    assert code == 0 and later["upload"]["failed"] == 1, later
    code, report = status_json(device_store_path)
    assert report["upload"]["status"] == "Failed"  # the kept refusal, not "Not started"
    ((listed),) = report["refused"]
    assert listed["profile_id"] == profile_id and listed["reason"] == "refused (test)"
    assert f"refused {profile_id}: " in muster_status(device_store_path)[1]


def test_after_a_wipe_the_kept_registrations_count_as_pending(
    own_server: ServerProcess, ship_dir: Path, device_store_path: Path
) -> None:
    assert muster_sync(own_server.url, device_store_path)[0] == 0
    (card, _, station), _ = two_people(ship_dir)
    assert muster_register(closed_port_url(), device_store_path, card, station)[1]["pending_upload"] == 1
    store = DeviceStore(device_store_path)
    assert store.wipe() == (1, 0)
    store.close()
    code, report = status_json(device_store_path)
    assert report["outbox"] == {"pending": 1, "sent": 0, "failed": 0}
    assert report["upload"]["pending"] == 1


def test_a_never_synced_store_is_offline(device_store_path: Path) -> None:
    DeviceStore(device_store_path).close()
    code, report = status_json(device_store_path)
    assert (code, report["mode"]) == (0, "offline")
    assert report["dependencies"]["server"] == {"state": "not configured", "reason": "never synced"}
    assert report["sync"]["status"] == "Not started" and report["sync"]["cursor"] is None
    assert report["outbox"] == {"pending": 0, "sent": 0, "failed": 0}
    assert (report["last_used"], report["days_to_wipe"]) == (None, None)


def test_last_use_and_days_to_the_retention_wipe(device_store_path: Path) -> None:
    used = datetime.now(UTC) - timedelta(days=3)
    store = DeviceStore(device_store_path)
    store.touch(used)
    store.close()
    code, report = status_json(device_store_path)
    assert code == 0
    assert datetime.fromisoformat(report["last_used"]) == used
    assert report["days_to_wipe"] == 7.0  # retention_days defaults to 10 (seed: ten days)


def test_a_store_held_by_the_app_is_an_error(live_server: ServerProcess, device_store_path: Path) -> None:
    assert muster_sync(live_server.url, device_store_path)[0] == 0
    store = DeviceStore(device_store_path)
    try:
        code, report = status_json(device_store_path)
    finally:
        store.close()
    assert code == 1
    assert set(report) == {"error"} and "in use by the running app" in report["error"]


def test_a_missing_store_is_an_error_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "device.duckdb"
    code, report = status_json(missing)
    assert code == 1 and "no such file" in report["error"]
    assert not missing.exists()


def test_without_json_an_error_is_a_line_on_stderr(tmp_path: Path) -> None:
    done = run_muster("status", "--db", str(tmp_path / "device.duckdb"), timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and "no such file" in done.stderr and "{" not in done.stderr


def test_without_json_it_prints_lines_for_people(device_store_path: Path) -> None:
    DeviceStore(device_store_path).close()
    code, out = muster_status(device_store_path)
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["mode: offline", "  network: not configured (never synced)"]
    assert lines[-3:] == [
        "sync: Not started (full)",
        "upload: Not started",
        "outbox: 0 pending, 0 sent, 0 failed",
    ]
