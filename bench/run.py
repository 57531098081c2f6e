"""``make bench``: full sync of the ``icon`` preset over loopback (issue 2's figures).

Prints one JSON object a line: ``{"name", "preset", "seconds", "floor_seconds", "ratio",
"peak_rss_mb", "runs"}`` (DESIGN.md, ``make bench``). ``seconds`` and ``floor_seconds``
are medians; each line's device runs in a process of its own so its peak RSS is its own.
The ship is generated once into ``bench/.data`` and the server imports it once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from sync_core.server.process import ServerProcess

DATA = Path(__file__).parent / ".data"
PRESET = "icon"
SEED = 1
CASES = (("full_sync_rows", False, 20), ("full_sync_with_pictures", True, 5))


def ensure_ship() -> Path:
    """The icon ship's Parquet files, generated on first use."""
    ship = DATA / f"ship-{PRESET}"
    if not (ship / "reservations.parquet").is_file():
        from fixtures.ship import generate_ship

        generate_ship(PRESET, SEED, ship)
    return ship


def run_case(url: str, ship: Path, name: str, portraits: bool, runs: int) -> dict:
    """One benchmark line, measured by a separate device process."""
    args = [sys.executable, "-m", "bench.device", "--server", url, "--ship", str(ship), "--runs", str(runs)]
    done = subprocess.run(args + (["--portraits"] if portraits else []), check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    seconds = statistics.median(result["seconds"])
    floor = statistics.median(result["floor_seconds"])
    return {
        "name": name,
        "preset": PRESET,
        "seconds": round(seconds, 4),
        "floor_seconds": round(floor, 4),
        "ratio": round(seconds / floor, 2),
        "peak_rss_mb": result["peak_rss_mb"],
        "runs": runs,
    }


def main() -> None:
    """Run every case against one server and print its line."""
    ship = ensure_ship()
    with ServerProcess(ship, DATA / f"server-{PRESET}.duckdb", DATA / "server.log") as url:
        for name, portraits, runs in CASES:
            print(json.dumps(run_case(url, ship, name, portraits, runs)), flush=True)


if __name__ == "__main__":
    main()
