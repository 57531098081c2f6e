"""The sign-in burst at the alarm, the devices' side, run as a process of its own.

``python -m bench.sign_in burst --server URL --devices N --seed S``: N devices (a client and
connection each) start evenly spread over one second, in a seeded random order, and each
signs in online as a crew member of its own (``bench001``...), retrying a busy server as a
handheld does. Each time is from the device's start to its session. Prints ``{"seconds":
[...], "errors": {message: count}, "peak_rss_mb"}``; ``seconds`` holds the devices that got
a session. ``add-users`` (same options) has the office (``office`` / ``office``) create
those crew members, once per server store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter

from bench.rss import peak_rss_mb
from sync_core.device import ServerClient
from sync_core.errors import SyncError
from sync_core.protocol import RecordChange

SPREAD_SECONDS = 1.0
# Users created per office edit: the server derives two argon2id keys for each password.
USERS_PER_EDIT = 20


def crew(devices: int) -> dict[str, str]:
    """Username -> password of the bench's crew members, one per device."""
    return {f"bench{number:03d}": f"bench password {number}" for number in range(1, devices + 1)}


async def add_users(url: str, passwords: dict[str, str]) -> None:
    """The office creates a crew user per entry of ``passwords``, setting their password."""
    changes = [
        RecordChange(
            key="users",
            id=username,
            op="set",
            fields={"display_name": username, "role": "crew", "password": password},
        )
        for username, password in passwords.items()
    ]
    async with ServerClient(url) as office:
        await office.sign_in("office", "office")
        for start in range(0, len(changes), USERS_PER_EDIT):
            await office.post_changes(changes[start : start + USERS_PER_EDIT])


async def _device(client: ServerClient, start: float, username: str, password: str) -> float:
    """Seconds from ``start`` (on the monotonic clock) to a session."""
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    async with client:
        await client.sign_in(username, password)
    return time.monotonic() - start


async def burst(
    url: str, devices: int, passwords: dict[str, str], seed: int
) -> tuple[list[float], Counter[str]]:
    """Run the burst; each device's seconds to a session, and the errors by message."""
    users = sorted(passwords)  # as many as devices
    offsets = [SPREAD_SECONDS * i / devices for i in range(devices)]
    random.Random(seed).shuffle(offsets)
    clients = [ServerClient(url) for _ in range(devices)]  # a handheld's client exists before the alarm
    begin = time.monotonic() + 0.2
    results = await asyncio.gather(
        *(
            _device(client, begin + offset, username, passwords[username])
            for client, offset, username in zip(clients, offsets, users, strict=True)
        ),
        return_exceptions=True,
    )
    errors: Counter[str] = Counter(
        str(result).replace(url, "URL")[:120] for result in results if isinstance(result, SyncError)
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, SyncError):
            raise result
    return [result for result in results if isinstance(result, float)], errors


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["add-users", "burst"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    passwords = crew(args.devices)
    if args.mode == "add-users":
        asyncio.run(add_users(args.server, passwords))
        return
    seconds, errors = asyncio.run(burst(args.server, args.devices, passwords, args.seed))
    print(json.dumps({"seconds": seconds, "errors": dict(errors), "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
