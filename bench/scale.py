"""``make bench-scale``: full and delta syncs of ships of 10,000, 25,000 and 50,000
profiles with 40 KB ID photos, to see time and memory grow (or not) with the ship.

Prints, per size, the lines ``scale_full_sync_rows``, ``scale_full_sync_with_pictures`` and
``scale_delta_100_10``: ``{"name", "profiles", "seconds", "floor_seconds", "ratio",
"peak_rss_mb", "server_peak_rss_mb", "runs"}``. ``peak_rss_mb`` is the device process's own
high-water mark; ``server_peak_rss_mb`` the server's since it started (its import included).
Each size gets a server store of its own, imported afresh. ``--device-root DIR`` runs the
device processes from another checkout (a baseline), the server and floors from this one.
A device run that fails prints ``{"name", "profiles", "error"}`` instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.rss import peak_rss_mb
from bench.run import DATA, PORTRAIT_KB, SERVER_START_TIMEOUT, device, ensure_ship, remove_store
from sync_core.server.process import ServerProcess

SIZES = (10_000, 25_000, 50_000)
ROWS_RUNS, DELTA_RUNS = 5, 10


def main() -> None:
    """Run every size and print its lines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device-root", type=Path, help="Run the device from this checkout.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    kb = str(PORTRAIT_KB)
    ships = {
        size: ensure_ship(f"{size}-{kb}kb", "--profiles", str(size), "--portrait-kb", kb)
        for size in args.sizes
    }
    for size, ship in ships.items():
        db = DATA / f"server-scale-{size}-{'baseline' if args.device_root else 'this'}.duckdb"
        remove_store(db)
        server = ServerProcess(ship, db, DATA / "server.log", SERVER_START_TIMEOUT)
        with server as url:
            assert server.process is not None
            for name, runs, floor, measured in _measure(args.device_root, ship, url):
                line = {"name": name, "profiles": size}
                if "error" in measured:
                    print(json.dumps({**line, "error": measured["error"]}), flush=True)
                    continue
                seconds = statistics.median(measured["seconds"])
                print(json.dumps({
                    **line,
                    "seconds": round(seconds, 4),
                    "floor_seconds": None if floor is None else round(floor, 4),
                    "ratio": None if floor is None else round(seconds / floor, 2),
                    "peak_rss_mb": measured["peak_rss_mb"],
                    "server_peak_rss_mb": peak_rss_mb(server.process.pid),
                    "runs": runs,
                }), flush=True)  # fmt: skip
        remove_store(db)


def _measure(root: Path | None, ship: Path, url: str) -> Iterator[tuple[str, int, float | None, dict]]:
    """Each line's name, runs, floor (or None) and device result (or ``{"error"}``). This
    checkout's delta run times its first sync (full, with portraits) too: that is the
    pictures line, from the same process. A baseline's device runs it on its own."""
    rows = _device(root, "sync", ROWS_RUNS, False, "--server", url)
    yield "scale_full_sync_rows", ROWS_RUNS, _floor(ship, ROWS_RUNS, False), rows
    if root is not None:
        pictures = _device(root, "sync", 1, True, "--server", url)
        yield "scale_full_sync_with_pictures", 1, _floor(ship, 1, True), pictures
    deltas = _device(root, "delta", DELTA_RUNS, False, "--server", url, "--case", "100_10")
    if root is None:
        first = {"seconds": [deltas["first_sync_seconds"]]} if "error" not in deltas else {}
        yield "scale_full_sync_with_pictures", 1, _floor(ship, 1, True), {**deltas, **first}
    yield "scale_delta_100_10", DELTA_RUNS, None, deltas


def _floor(ship: Path, runs: int, portraits: bool) -> float:
    return statistics.median(device("floor", runs, portraits, "--ship", str(ship))["seconds"])


def _device(root: Path | None, mode: str, runs: int, portraits: bool, *options: str) -> dict:
    """:func:`bench.run.device` (from ``root``), or ``{"error"}`` when the device fails."""
    try:
        return device(mode, runs, portraits, *options, root=root)
    except subprocess.CalledProcessError as exc:  # a device that fails says why, the rest goes on
        error = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        return {"error": error[0]}


if __name__ == "__main__":
    main()
