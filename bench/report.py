"""The drill report's benchmark, run as a process of its own.

``python -m bench.report csv|pdf --server URL --runs N``: the office fetches the general
assembly report (every person on board, with the registrations the upload benchmark left:
20 x 500) N times; each time is from the request to the last byte received. Prints
``{"seconds": [...], "peak_rss_mb", "bytes"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

from sync_core.device import ServerClient
from sync_core.protocol import SafetyMode


async def timed_reports(url: str, runs: int, fmt: str) -> tuple[list[float], int]:
    """Seconds of each report, and the size of the last one in bytes."""
    seconds, size = [], 0
    async with ServerClient(url) as client:
        await client.sign_in("office", "office")
        for _ in range(runs):
            started = time.perf_counter()
            size = len(await client.report(SafetyMode.GENASS, None, fmt))
            seconds.append(time.perf_counter() - started)
    return seconds, size


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["csv", "pdf"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    seconds, size = asyncio.run(timed_reports(args.server, args.runs, args.mode))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak_rss_mb, 1), "bytes": size}))


if __name__ == "__main__":
    main()
