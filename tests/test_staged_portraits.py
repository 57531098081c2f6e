"""A full sync's portraits to fetch come out of the staged picture rows in hash order, each
once, a request at a time, and only those the device does not hold."""

from __future__ import annotations

import hashlib
import os

from sync_core.device import DeviceStore
from sync_core.device.store import STREAM_ROWS
from tests.sealed import put_rows, wire_rows

SHIP = STREAM_ROWS + 900  # more than one read of the staged hashes
SHARED = 40  # profiles whose portrait another profile has too
HELD = 25  # portraits the device holds already


def test_missing_portraits_come_once_each_in_hash_order(device: DeviceStore) -> None:
    device.unlock(os.urandom(32))
    hashes = [hashlib.sha256(f"portrait {n}".encode()).hexdigest() for n in range(SHIP)]
    rows = [{"sha256": sha256, "profile_id": f"P{n}"} for n, sha256 in enumerate(hashes)]
    rows += [{"sha256": hashes[n], "profile_id": f"S{n}"} for n in range(SHARED)]
    for sha256 in hashes[-HELD:]:
        device.portraits.write(sha256, b"\xff\xd8 held")
    device.begin_staging()

    staged, missing = device.stage_picture_index([wire_rows("pictures", rows)])

    wanted = sorted(hashes[:-HELD])
    assert (staged, missing) == (SHIP + SHARED, len(wanted))
    handed, after = [], ""
    while page := device.staged_missing_pictures(after, 300):
        assert len(page) <= 300
        handed += page
        after = page[-1]
    assert handed == wanted


def test_missing_portraits_are_those_without_a_row_or_a_file(device: DeviceStore) -> None:
    device.unlock(os.urandom(32))
    hashes = [hashlib.sha256(f"portrait {n}".encode()).hexdigest() for n in range(SHIP)]
    profiles = [{"profile_id": f"P{n}", "picture_sha256": sha256} for n, sha256 in enumerate(hashes)]
    profiles += [{"profile_id": f"S{n}", "picture_sha256": hashes[n]} for n in range(SHARED)]
    profiles += [{"profile_id": "NONE"}]  # no portrait
    put_rows(device, "reservations", profiles)
    rows = [
        {"sha256": sha256, "profile_id": f"P{n}", "jpeg": b"\xff\xd8 held"} for n, sha256 in enumerate(hashes)
    ]
    put_rows(device, "pictures", rows[HELD:])  # rows and files, but the first HELD have neither
    lost = hashes[-3:]
    for sha256 in lost:  # rows whose files are gone
        (device.portraits.root / sha256[:2] / f"{sha256}.jpg").unlink()

    assert device.missing_pictures() == sorted(hashes[:HELD] + lost)
