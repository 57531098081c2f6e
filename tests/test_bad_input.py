"""Bad input from the server gets a clear error and loses nothing (docs/architecture.md,
'Bad input fails alone').

Faults are injected into the real server's answers by an httpx transport that wraps the
real one; everything else is real.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc

from sync_core.device import DeviceStore
from sync_core.device.headless import sync_once
from sync_core.protocol import ARROW_STREAM, PICTURE_MAX_BYTES, SyncState
from sync_core.server.app import arrow_bytes
from sync_core.server.process import ServerProcess

from .faults import FaultyTransport


class SpoilTwoPictures:
    """Corrupts one portrait and makes another oversize, in the first batch only."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
        if self.done or request.method != "POST" or not request.url.path.endswith("/pictures"):
            return None
        table = pa.ipc.open_stream(body).read_all()
        jpegs = table.column("jpeg").to_pylist()
        jpegs[0] = jpegs[0][:-10] + b"corrupted!"
        jpegs[1] = jpegs[1] + b"\0" * PICTURE_MAX_BYTES
        self.done = True
        return arrow_bytes(table.set_column(2, "jpeg", pa.array(jpegs, pa.binary())), None), ARROW_STREAM


async def test_corrupt_and_oversize_pictures_fail_alone(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    status = await sync_once(
        live_server.url, store, "demo", "demo", transport=FaultyTransport(SpoilTwoPictures())
    )
    assert status.status is SyncState.SUCCESS, status.error
    pictures = status.datasets["pictures"]
    assert pictures.failed == 2
    assert "2 portraits refused" in (pictures.error or "")
    assert pictures.count == status.datasets["reservations"].count - 2
    store.close()


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
