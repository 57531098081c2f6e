"""Bad input from the server gets a clear error and loses nothing (docs/architecture.md,
'Bad input fails alone').

Faults are injected into the real server's answers by an httpx transport that wraps the
real one; everything else is real.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc

from fixtures.portraits import portrait
from sync_core.device import DeviceStore
from sync_core.device.headless import sync_once
from sync_core.protocol import ARROW_STREAM, PICTURE_MAX_BYTES, SyncState, picture_problem
from sync_core.server.app import arrow_bytes
from sync_core.server.process import ServerProcess

from .faults import FaultyTransport


class SpoilThreePictures:
    """In the first batch only: corrupts one portrait, truncates another (it still starts
    with the JPEG marker) and makes a third oversize; ``spoilt`` names their profiles."""

    def __init__(self) -> None:
        self.done = False
        self.spoilt: list[str] = []

    def __call__(self, request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
        if self.done or request.method != "POST" or not request.url.path.endswith("/pictures"):
            return None
        table = pa.ipc.open_stream(body).read_all()
        jpegs = table.column("jpeg").to_pylist()
        jpegs[0] = jpegs[0][:-10] + b"corrupted!"
        jpegs[1] = jpegs[1][: len(jpegs[1]) // 2]
        jpegs[2] = jpegs[2] + b"\0" * PICTURE_MAX_BYTES
        self.spoilt = table.column("profile_id").to_pylist()[:3]
        self.done = True
        return arrow_bytes(table.set_column(2, "jpeg", pa.array(jpegs, pa.binary())), None), ARROW_STREAM


async def test_corrupt_truncated_and_oversize_pictures_fail_alone_and_are_named(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    spoil = SpoilThreePictures()
    status = await sync_once(live_server.url, store, "demo", "demo", transport=FaultyTransport(spoil))
    assert status.status is SyncState.SUCCESS, status.error
    pictures = status.datasets["pictures"]
    assert pictures.status is SyncState.FAILED and pictures.failed == 3
    assert (pictures.error or "").startswith("3 portraits refused: ")
    assert all(profile_id in (pictures.error or "") for profile_id in spoil.spoilt)
    assert pictures.count == status.datasets["reservations"].count - 3
    assert len(set(store.portraits.held())) == pictures.count  # the rest went on
    store.close()


def test_a_truncated_portrait_is_refused_even_when_its_hash_matches() -> None:
    jpeg = portrait(random.Random(1), "P0000001", uniform=False)
    whole = hashlib.sha256(jpeg).hexdigest()
    cut = jpeg[: len(jpeg) // 2]
    assert picture_problem(whole, jpeg) is None
    assert picture_problem(hashlib.sha256(cut).hexdigest(), cut) == "truncated JPEG"


def _captive_portal(request: httpx.Request, body: bytes) -> tuple[bytes, str]:
    return b"<html><body>Welcome aboard! Accept the terms</body></html>", "text/html"


async def test_captive_portal_page_is_a_clear_failure(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    status = await sync_once(
        live_server.url, store, "demo", "demo", transport=FaultyTransport(_captive_portal)
    )
    assert status.status is SyncState.FAILED
    assert (status.error or "").startswith("Malformed response from server")
    assert store.sync_point() is None
    store.close()


def _garbage_reservations(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
    if request.url.path.endswith("/reservations"):
        return b"\x00garbage" * 10, ARROW_STREAM
    return None


def _wrong_columns_for_lifeboats(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
    if request.url.path.endswith("/lifeboats"):
        return arrow_bytes(pa.table({"code": ["LB01"]})), ARROW_STREAM
    return None


async def test_malformed_dataset_keeps_previous_data(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    good = await sync_once(live_server.url, store, "demo", "demo")
    before = store.datasets()
    for fault in (_garbage_reservations, _wrong_columns_for_lifeboats):
        status = await sync_once(
            live_server.url, store, "demo", "demo", full=True, transport=FaultyTransport(fault)
        )
        assert status.status is SyncState.FAILED
        assert "Malformed response from server" in (status.error or "")
        assert store.datasets() == before
        assert store.sync_point().cursor == good.cursor  # type: ignore[union-attr]
    store.close()
