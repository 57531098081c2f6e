"""``make bench``: full and delta syncs and registration of the
``icon`` preset over loopback.

Prints one JSON object a line: ``{"name", "preset", "seconds", "floor_seconds", "ratio",
"peak_rss_mb", "runs"}`` (README, "Benchmark"). ``seconds`` and ``floor_seconds``
are medians; each line's device runs in a process of its own so its peak RSS is its own.
The ship is generated once into ``bench/.data`` and the server imports it once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from sync_core.key_slots import SHIP_KEY_FILE
from sync_core.server.process import ServerProcess

DATA = Path(__file__).parent / ".data"
PRESET = "icon"
SEED = 1
CASES = (("full_sync_rows", False, 20), ("full_sync_with_pictures", True, 5))
DELTA_CASES = (
    ("delta_100_10", "100_10", 20),
    ("delta_empty", "empty", 50),
    ("delta_100_pictures", "100_pictures", 5),
)
UPLOAD_RUNS = 20
SCAN_RUNS = 200
SEARCH_KEYSTROKES = 60


def p99(seconds: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``seconds``."""
    ranked = sorted(seconds)
    return ranked[max(0, -(-99 * len(ranked) // 100) - 1)]


def ensure_ship() -> Path:
    """The icon ship's Parquet files, generated on first use."""
    ship = DATA / f"ship-{PRESET}"
    if not (ship / SHIP_KEY_FILE).is_file():  # written last but one: older ships lack it
        from fixtures.ship import generate_ship

        generate_ship(PRESET, SEED, ship)
    return ship


def device(mode: str, runs: int, portraits: bool, *options: str, module: str = "bench.device") -> dict:
    """Run ``MODULE MODE`` (a device benchmark) in a process of its own; its JSON result."""
    args = [sys.executable, "-m", module, mode, "--runs", str(runs), *options]
    done = subprocess.run(
        args + (["--portraits"] if portraits else []), check=True, capture_output=True, text=True
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


def main() -> None:
    """Run every case and print its line. The delta cases change the server's data, so they
    run on a server store of their own, made afresh from the ship each time."""
    ship = ensure_ship()
    with ServerProcess(ship, DATA / f"server-{PRESET}.duckdb", DATA / "server.log") as url:
        for name, portraits, runs in CASES:
            print(json.dumps(run_case(url, ship, name, portraits, runs)), flush=True)
    scratch = DATA / f"server-{PRESET}-deltas.duckdb"
    scratch.unlink(missing_ok=True)
    with ServerProcess(ship, scratch, DATA / "server.log") as url:
        for name, case, runs in DELTA_CASES:
            deltas = device("delta", runs, False, "--server", url, "--case", case)
            print(json.dumps(line(name, deltas, runs)), flush=True)
        uploads = device("upload", UPLOAD_RUNS, False, "--server", url, module="bench.registration")
        print(json.dumps(line("upload_500", uploads, UPLOAD_RUNS)), flush=True)
        scans = device("scan", SCAN_RUNS, False, "--server", url, module="bench.registration")
        print(json.dumps(line("scan_p99", scans, SCAN_RUNS, seconds=p99(scans["seconds"]))), flush=True)
        searches = device("search", SEARCH_KEYSTROKES, False, "--server", url, module="bench.registration")
        print(json.dumps(line("search_keystroke", searches, len(searches["seconds"]))), flush=True)


if __name__ == "__main__":
    main()
