"""The sign-in burst at the alarm, the devices' side, run as a process of its own.

``python -m bench.sign_in --server URL --devices N --preset P --seed S``: N devices (a
client and connection each) start evenly spread over one second, in a seeded random order,
and each signs in online as one of the ship's users (``fixture_passwords``), retrying a busy
server as a handheld does. Each time is from the device's start to its session. Prints
``{"seconds": [...], "errors": {reason: count}, "peak_rss_mb"}``; ``seconds`` holds the
devices that got a session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import time
from collections import Counter

from fixtures.ship import fixture_passwords
from sync_core.device import ServerClient
from sync_core.errors import SyncError

SPREAD_SECONDS = 1.0


async def _device(client: ServerClient, start: float, username: str, password: str) -> float:
    """Seconds from ``start`` (on the monotonic clock) to a session."""
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    async with client:
        await client.sign_in(username, password)
    return time.monotonic() - start


async def burst(
    url: str, devices: int, passwords: dict[str, str], seed: int
) -> tuple[list[float], Counter[str]]:
    """Run the burst; each device's seconds to a session, and the errors by kind."""
    users = sorted(passwords)
    offsets = [SPREAD_SECONDS * i / devices for i in range(devices)]
    random.Random(seed).shuffle(offsets)
    clients = [ServerClient(url) for _ in range(devices)]  # a handheld's client exists before the alarm
    begin = time.monotonic() + 0.2
    results = await asyncio.gather(
        *(
            _device(client, begin + offset, users[i % len(users)], passwords[users[i % len(users)]])
            for i, (client, offset) in enumerate(zip(clients, offsets, strict=True))
        ),
        return_exceptions=True,
    )
    errors: Counter[str] = Counter(
        type(result).__name__ for result in results if isinstance(result, SyncError)
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, SyncError):
            raise result
    return [result for result in results if isinstance(result, float)], errors


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    passwords = fixture_passwords(args.preset, args.seed)
    seconds, errors = asyncio.run(burst(args.server, args.devices, passwords, args.seed))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "errors": dict(errors), "peak_rss_mb": round(peak_rss_mb, 1)}))


if __name__ == "__main__":
    main()
