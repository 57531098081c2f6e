"""Helpers for the command-line tests: running ``python -m muster_tui`` as a child process,
reading its one-line JSON report, a server address nobody listens on, and the ``muster
sync`` and ``muster register`` runs that several test modules share."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

import duckdb

from sync_core.protocol import DATASETS

SYNC_KEYS = {"status", "kind", "datasets", "upload", "cursor", "seconds", "error"}
REGISTER_KEYS = {"registration_id", "profile_id", "result", "pending_upload", "error"}


def run_muster(
    *args: str, timeout: float = 90, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m muster_tui ARGS`` to the end, with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "muster_tui", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def json_report(done: subprocess.CompletedProcess[str], keys: Collection[str] | None = None) -> dict:
    """The one line of JSON ``done`` printed, asserting it is exactly one line and, when
    ``keys`` is given, that it has exactly those keys."""
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    report = json.loads(lines[0])
    if keys is not None:
        assert set(report) == set(keys)
    return report


def closed_port_url() -> str:
    """An ``http://127.0.0.1:PORT`` address with nothing listening on the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def muster_sync(url: str, db: Path, password: str = "demo", *extra: str) -> tuple[int, dict]:
    """``muster sync`` as demo: its exit code and its report, checked for every key and dataset."""
    args = ["sync", "--server", url, "--db", str(db), "--user", "demo", *extra]
    done = run_muster(*args, env={**os.environ, "MUSTER_PASSWORD": password})
    report = json_report(done, SYNC_KEYS)
    assert set(report["datasets"]) == set(DATASETS)
    return done.returncode, report


def muster_register(url: str, db: Path, card: str, station: str, *extra: str) -> tuple[int, dict]:
    """``muster register`` of ``card`` at ``station`` in general assembly as demo: its exit
    code and its report, checked for every key."""
    args = ["register", "--server", url, "--db", str(db), "--user", "demo"]
    args += ["--mode", "GENASS", "--station", station, "--card", card, *extra]
    done = run_muster(*args, env={**os.environ, "MUSTER_PASSWORD": "demo"})
    report = json_report(done, REGISTER_KEYS)
    assert isinstance(report["pending_upload"], int)
    return done.returncode, report


def two_people(ship_dir: Path) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """Two on-board people at different muster stations: (card, profile_id, station)."""
    rows = duckdb.sql(
        f"SELECT board_card_number, profile_id, muster_station FROM '{ship_dir}/reservations.parquet' "
        "WHERE movement_status = 'Onboard' ORDER BY profile_id"
    ).fetchall()
    first = rows[0]
    other = next(row for row in rows if row[2] != first[2])
    return first, other
