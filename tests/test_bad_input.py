"""Bad input from the server gets a clear error and loses nothing (docs/architecture.md,
'Bad input fails alone').

Faults are injected into the real server's answers by an httpx transport that wraps the
real one; everything else is real.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc
import pytest

from fixtures.portraits import portrait
from sync_core.device import DeviceStore
from sync_core.device.headless import sync_once
from sync_core.protocol import ARROW_STREAM, DATASETS, PICTURE_MAX_BYTES, SyncState, picture_problem
from sync_core.server.app import arrow_bytes
from sync_core.server.process import ServerProcess

from .faults import BrokenOff, FaultyTransport, Rewrite


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


async def failed_first_sync(server: ServerProcess, path: Path, fault: Rewrite) -> str:
    """A first sync through ``fault`` fails and leaves no sync point; its error."""
    store = DeviceStore(path)
    status = await sync_once(server.url, store, "demo", "demo", transport=FaultyTransport(fault))
    assert status.status is SyncState.FAILED
    assert store.sync_point() is None
    store.close()
    return status.error or ""


async def test_captive_portal_page_is_a_clear_failure(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    error = await failed_first_sync(live_server, device_store_path, _captive_portal)
    assert error.startswith("Malformed response from server")


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


def _reservations_broken_off(request: httpx.Request, body: bytes) -> tuple[bytes | BrokenOff, str] | None:
    if request.url.path.endswith("/reservations"):
        return BrokenOff(body, len(body) // 2), ARROW_STREAM
    return None


async def test_a_dataset_broken_off_mid_stream_fails_and_keeps_previous_data(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    """The reservations are staged while they arrive: a connection that drops half-way
    fails the run as unreachable (not as a bad stream), and the previous data stays."""
    store = DeviceStore(device_store_path)
    good = await sync_once(live_server.url, store, "demo", "demo")
    before = store.datasets()
    transport = FaultyTransport(_reservations_broken_off)
    status = await sync_once(live_server.url, store, "demo", "demo", full=True, transport=transport)
    assert status.status is SyncState.FAILED
    assert "dropped mid-answer" in (status.error or ""), status.error
    assert store.datasets() == before
    assert store.sync_point().cursor == good.cursor  # type: ignore[union-attr]
    store.close()


def _with_future_column(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
    """Every dataset and change page gains a column this device does not know (a newer server)."""
    path = request.url.path
    if "/snapshots/" not in path and not path.endswith("/changes"):
        return None
    table = pa.ipc.open_stream(body).read_all()
    return arrow_bytes(table.append_column("future", pa.array(["x"] * table.num_rows))), ARROW_STREAM


async def test_unknown_columns_are_ignored_and_logged_once(
    live_server: ServerProcess, device_store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DeviceStore(device_store_path)
    reference = await sync_once(live_server.url, store, "demo", "demo")
    with caplog.at_level(logging.WARNING, "sync_core.device.client"):
        for full in (True, True, False):
            status = await sync_once(
                live_server.url,
                store,
                "demo",
                "demo",
                full=full,
                transport=FaultyTransport(_with_future_column),
            )
            assert status.status is SyncState.SUCCESS, status.error
    assert status.cursor == reference.cursor
    assert {key: ds.count for key, ds in status.datasets.items()} == {
        key: ds.count for key, ds in reference.datasets.items()
    }
    warnings = [r.getMessage() for r in caplog.records if "'future'" in r.getMessage()]
    # once per dataset and once for the change page, however many syncs saw it
    assert len(warnings) == len(DATASETS) + 1, warnings
    store.close()


def _without_cabin(request: httpx.Request, body: bytes) -> tuple[bytes, str] | None:
    if request.url.path.endswith("/reservations"):
        return arrow_bytes(pa.ipc.open_stream(body).read_all().drop_columns(["cabin"])), ARROW_STREAM
    return None


async def test_missing_column_names_the_server_too_old(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    error = await failed_first_sync(live_server, device_store_path, _without_cabin)
    assert "server too old: column cabin" in error
