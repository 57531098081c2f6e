"""``make bench``: full and delta syncs, registration, the server's sign-in burst and the
drill report of the ``icon`` preset, with 40 KB ID photos, over loopback.

Prints one JSON object a line: ``{"name", "preset", "seconds", "floor_seconds", "ratio",
"peak_rss_mb", "runs"}`` (README, "Benchmark"). ``seconds`` and ``floor_seconds``
are medians; each line's device runs in a process of its own and ``peak_rss_mb`` is that
process's own high-water mark. The ship is generated once, by a child process, into
``bench/.data``, and the server imports it once.
The terminal lines of :mod:`bench.tty` (``tty_*``) have their own shape: bytes per terminal
profile and size.
``server_sign_in_200`` (one line per server store) adds ``p50``, ``errors``, ``store``,
``server_peak_rss_mb`` and ``server_cpu_seconds`` (the server's CPU for the whole burst: on
a shared machine the wall times depend on the other load, this does not); its ``seconds``
is the p99 from a device's start to its session.
``fallback_410`` is a delta the server answers 410 (its tombstones dropped past the device's
cursor), which turns into a full sync on a device that holds the ship already.
``python -m bench.run --only NAME`` runs the lines whose name starts with NAME (of the device
lines, only the sync lines can be picked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import tty
from bench.dashboard import dashboard_open
from bench.rss import cpu_seconds, peak_rss_mb
from bench.stores import ENGINES, new_store, store_server
from sync_core.key_slots import SHIP_KEY_FILE
from sync_core.server.changes import prune_tombstones
from sync_core.server.process import ServerProcess
from sync_core.server.store import open_server_store

DATA = Path(__file__).parent / ".data"
PRESET = "icon"
SEED = 1
PORTRAIT_KB = 40  # the size of a real ID photo
CASES = (("full_sync_rows", False, 20), ("full_sync_with_pictures", True, 5))
DELTA_CASES = (
    ("delta_100_10", "100_10", 20),
    ("delta_empty", "empty", 50),
    ("delta_100_pictures", "100_pictures", 5),
    ("delta_500_pictures", "500_pictures", 3),
    ("sync_now", "sync_now", 3),
)
FALLBACK_RUNS = 3
UPLOAD_RUNS = 20
SCAN_RUNS = 200
SEARCH_KEYSTROKES = 60
SIGN_IN_DEVICES = 200
REPORT_RUNS = 3
# A ship's server imports it before it listens: a big ship's import takes minutes.
SERVER_START_TIMEOUT = 1800.0


def p99(seconds: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``seconds``."""
    ranked = sorted(seconds)
    return ranked[max(0, -(-99 * len(ranked) // 100) - 1)]


def ensure_ship(name: str = f"{PRESET}-{PORTRAIT_KB}kb", *options: str) -> Path:
    """``bench/.data/ship-NAME``: the ship ``muster fixtures ship OPTIONS --seed SEED`` writes
    (default: the icon preset with ``PORTRAIT_KB`` photos), generated on first use by a child
    process (its memory is not the benchmark's)."""
    options = options or ("--preset", PRESET, "--portrait-kb", str(PORTRAIT_KB))
    ship = DATA / f"ship-{name}"
    if not (ship / SHIP_KEY_FILE).is_file():  # written last: older ships lack it
        command = [sys.executable, "-m", "muster_tui", "fixtures", "ship", *options]
        subprocess.run([*command, "--seed", str(SEED), "--out", str(ship)], check=True, capture_output=True)
    return ship


def remove_store(db: Path) -> None:
    """Remove the DuckDB server store ``db``, its write-ahead log and its portrait files."""
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.portraits", ignore_errors=True)


def device(
    mode: str,
    runs: int,
    portraits: bool,
    *options: str,
    module: str = "bench.device",
    root: Path | None = None,
) -> dict:
    """Run ``MODULE MODE`` (a device benchmark) in a process of its own, with the code of the
    checkout ``root`` (default: this one); its JSON result."""
    args = [sys.executable, "-m", module, mode, "--runs", str(runs), *options]
    env = None if root is None else {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        args + (["--portraits"] if portraits else []),
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    return json.loads(done.stdout)


def run_case(url: str, ship: Path, name: str, portraits: bool, runs: int) -> dict:
    """One benchmark line: the sync and its floor, each measured by a separate process."""
    synced = device("sync", runs, portraits, "--server", url)
    floor = statistics.median(device("floor", runs, portraits, "--ship", str(ship))["seconds"])
    seconds = statistics.median(synced["seconds"])
    return {
        "name": name,
        "preset": PRESET,
        "seconds": round(seconds, 4),
        "floor_seconds": round(floor, 4),
        "ratio": round(seconds / floor, 2),
        "peak_rss_mb": synced["peak_rss_mb"],
        "runs": runs,
    }


def line(name: str, measured: dict, runs: int, seconds: float | None = None) -> dict:
    """A benchmark line without a floor (``floor_seconds`` and ``ratio`` null); ``seconds``
    defaults to the median of the measured runs."""
    return {
        "name": name,
        "preset": PRESET,
        "seconds": round(statistics.median(measured["seconds"]) if seconds is None else seconds, 4),
        "floor_seconds": None,
        "ratio": None,
        "peak_rss_mb": measured["peak_rss_mb"],
        "runs": runs,
    }


def server_sign_in(ship: Path, store: str) -> dict:
    """The sign-in burst: ``SIGN_IN_DEVICES`` devices within one second, each signing in as
    a crew member of its own, against a server of its own (started afresh on a store
    imported and given its crew by another, so its peak RSS is this burst's) over a new
    store on the ``store`` engine; the office adds the crew before the burst, each with a
    password, so each has their key slot."""
    with new_store(store) as (work, db, _):
        bench = [sys.executable, "-m", "bench.sign_in"]
        args = ["--devices", str(SIGN_IN_DEVICES), "--seed", str(SEED)]
        with store_server(ship, db, work) as url:  # the import, apart
            subprocess.run([*bench, "add-users", "--server", url, *args], check=True)
        server = store_server(ship, db, work)
        with server as url:
            assert server.process is not None
            cpu_before = cpu_seconds(server.process.pid)
            done = subprocess.run(
                [*bench, "burst", "--server", url, *args],
                check=True,
                capture_output=True,
                text=True,
            )
            server_rss = peak_rss_mb(server.process.pid)
            server_cpu = cpu_seconds(server.process.pid) - cpu_before
    measured = json.loads(done.stdout)
    seconds = measured["seconds"]
    return {
        "name": f"server_sign_in_{SIGN_IN_DEVICES}",
        "preset": PRESET,
        "seconds": round(p99(seconds), 4) if seconds else None,
        "floor_seconds": None,
        "ratio": None,
        "p50": round(statistics.median(seconds), 4) if seconds else None,
        "errors": sum(measured["errors"].values()),
        "error_kinds": measured["errors"],
        "store": store,
        "peak_rss_mb": measured["peak_rss_mb"],
        "server_peak_rss_mb": server_rss,
        "server_cpu_seconds": round(server_cpu, 2),
        "runs": SIGN_IN_DEVICES,
    }


def main() -> None:
    """Run every case (or those ``--only`` names) and print its line. The delta cases
    change the server's data, so they run on a server store of their own, made afresh from
    the ship each time."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="run only the lines whose name starts with this")
    only = parser.parse_args().only
    ship = ensure_ship()
    if f"server_sign_in_{SIGN_IN_DEVICES}".startswith(only):
        for store in ENGINES:
            print(json.dumps(server_sign_in(ship, store)), flush=True)
    sync_lines(ship, only)
    if "tty_".startswith(only) or only.startswith("tty_"):
        for result in tty.bench_lines(tty.MUSTER, list(tty.PROFILE_TERMS), list(tty.SIZES)):
            if result["name"].startswith(only):
                print(json.dumps(result), flush=True)


def sync_lines(ship: Path, only: str = "") -> None:
    """The device lines: syncs, uploads, scans, searches, reports; with ``only``, just the
    sync lines whose name starts with it."""
    if any(name.startswith(only) for name, _, _ in CASES):
        with ServerProcess(
            ship, DATA / f"server-{ship.name}.duckdb", DATA / "server.log", SERVER_START_TIMEOUT
        ) as url:
            for name, portraits, runs in CASES:
                if name.startswith(only):
                    print(json.dumps(run_case(url, ship, name, portraits, runs)), flush=True)
    if any(name.startswith(only) for name, _, _ in DELTA_CASES):
        delta_lines(ship, only)
    if "fallback_410".startswith(only):
        print(json.dumps(fallback_line(ship)), flush=True)
    if not only:  # steady load: bench/server_load.py prints its line
        for store in ENGINES:
            subprocess.run([sys.executable, "-m", "bench.server_load", "--store", store], check=True)


def delta_lines(ship: Path, only: str) -> None:
    """The delta cases whose name starts with ``only`` and, without ``only``, the lines of
    uploads, scans, searches and reports, on a server store made afresh from the ship."""
    scratch = DATA / f"server-{ship.name}-deltas.duckdb"
    remove_store(scratch)
    with ServerProcess(ship, scratch, DATA / "server.log", SERVER_START_TIMEOUT) as url:
        for name, case, runs in DELTA_CASES:
            if name.startswith(only):
                options = ("--server", url, "--case", case, "--portrait-kb", str(PORTRAIT_KB))
                deltas = device("delta", runs, False, *options)
                print(json.dumps(line(name, deltas, runs)), flush=True)
        if only:
            return
        uploads = device("upload", UPLOAD_RUNS, False, "--server", url, module="bench.registration")
        print(json.dumps(line("upload_500", uploads, UPLOAD_RUNS)), flush=True)
        scans = device("scan", SCAN_RUNS, False, "--server", url, module="bench.registration")
        print(json.dumps(line("scan_p99", scans, SCAN_RUNS, seconds=p99(scans["seconds"]))), flush=True)
        searches = device("search", SEARCH_KEYSTROKES, False, "--server", url, module="bench.registration")
        print(json.dumps(line("search_keystroke", searches, len(searches["seconds"]))), flush=True)
        for fmt in ("csv", "pdf"):
            report = device(fmt, REPORT_RUNS, False, "--server", url, module="bench.report")
            print(json.dumps(line(f"report_{fmt}", report, REPORT_RUNS)), flush=True)
        with dashboard_open(url) as polls:
            deltas = device("delta", 50, False, "--server", url, "--case", "empty")
            print(json.dumps(line("delta_empty_dashboard_open", deltas, 50)), flush=True)
            uploads = device("upload", UPLOAD_RUNS, False, "--server", url, module="bench.registration")
            print(json.dumps(line("upload_500_dashboard_open", uploads, UPLOAD_RUNS)), flush=True)
        polled = {"seconds": polls, "peak_rss_mb": None}
        print(json.dumps(line("dashboard_poll", polled, len(polls))), flush=True)


def fallback_line(ship: Path, root: Path | None = None) -> dict:
    """``fallback_410``: a device syncs once (full), then ``FALLBACK_RUNS`` times the server
    stops, drops every tombstone (its horizon passes the device's cursor, as for a handheld
    away longer than tombstones are kept) and starts again, and the device signs in and
    syncs: each a delta answered 410, turned into a full sync. A device process per sync;
    the line's ``peak_rss_mb`` is the highest of the fallbacks'. ``root``: as :func:`device`."""
    db = DATA / f"server-{ship.name}-fallback.duckdb"
    remove_store(db)
    seconds, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="muster-fallback-") as work:
        options = ("--store", str(Path(work) / "device.duckdb"))
        for run in range(FALLBACK_RUNS + 1):
            if run:
                store = open_server_store(db)
                prune_tombstones(store, datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1))
                store.close()
            with ServerProcess(ship, db, DATA / "server.log", SERVER_START_TIMEOUT) as url:
                synced = device("fallback", 1, False, "--server", url, *options, root=root)
            if run and synced["kind"] != "full":
                raise SystemExit(f"the sync after the tombstones went was a {synced['kind']} sync")
            if run:
                seconds += synced["seconds"]
                peaks.append(synced["peak_rss_mb"])
    return line("fallback_410", {"seconds": seconds, "peak_rss_mb": max(peaks)}, FALLBACK_RUNS)


if __name__ == "__main__":
    main()
