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
from pathlib import Path

from bench.rss import peak_rss_mb
from bench.run import DATA, PORTRAIT_KB, SERVER_START_TIMEOUT, device, ensure_ship
from sync_core.server.process import ServerProcess

SIZES = (10_000, 25_000, 50_000)
ROWS_RUNS, PICTURES_RUNS, DELTA_RUNS = 5, 1, 10


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
        db = DATA / f"server-scale-{size}.duckdb"
        db.unlink(missing_ok=True)
        server = ServerProcess(ship, db, DATA / "server.log", SERVER_START_TIMEOUT)
        with server as url:
            assert server.process is not None
            lines = (
                ("scale_full_sync_rows", "sync", ROWS_RUNS, False, ()),
                ("scale_full_sync_with_pictures", "sync", PICTURES_RUNS, True, ()),
                ("scale_delta_100_10", "delta", DELTA_RUNS, False, ("--case", "100_10")),
            )
            for name, mode, runs, portraits, options in lines:
                try:
                    measured = device(mode, runs, portraits, "--server", url, *options, root=args.device_root)
                except subprocess.CalledProcessError as exc:  # a device that fails says why, the rest goes on
                    error = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
                    print(json.dumps({"name": name, "profiles": size, "error": error[0]}), flush=True)
                    continue
                floor = None
                if mode == "sync":
                    floor = statistics.median(
                        device("floor", runs, portraits, "--ship", str(ship))["seconds"]
                    )
                seconds = statistics.median(measured["seconds"])
                print(json.dumps({
                    "name": name,
                    "profiles": size,
                    "seconds": round(seconds, 4),
                    "floor_seconds": None if floor is None else round(floor, 4),
                    "ratio": None if floor is None else round(seconds / floor, 2),
                    "peak_rss_mb": measured["peak_rss_mb"],
                    "server_peak_rss_mb": peak_rss_mb(server.process.pid),
                    "runs": runs,
                }), flush=True)  # fmt: skip
        db.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
