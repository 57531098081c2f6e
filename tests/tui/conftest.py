"""Fixtures for the TUI tests that need no server: a device store and an app whose network
refuses every request, on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from muster_tui.app import MusterApp, make_app
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore
from sync_core.device.connectivity import ConnectivityMonitor
from tests.tui.helpers import SERVER_URL, SYNCED_AT


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused by the test transport", request=request)


async def _unreachable(host: str, port: int) -> None:
    raise OSError(f"{host}:{port} refused by the test")


def offline_monitor(clock: FrozenClock) -> ConnectivityMonitor:
    """A monitor whose probes all fail at once: the app is offline (server down)."""
    return ConnectivityMonitor(
        SERVER_URL,
        clock=clock,
        network=_unreachable,
        tcp=_unreachable,
        transport=httpx.MockTransport(_refuse),
    )


@pytest.fixture
def tui_store(tmp_path: Path) -> Iterator[DeviceStore]:
    """A fresh, empty device store, closed after the test."""
    store = DeviceStore(tmp_path / "device.duckdb")
    yield store
    store.close()


@pytest.fixture
def offline_app(tui_store: DeviceStore) -> MusterApp:
    """The app on an empty store, a frozen clock and a network that refuses everything."""
    clock = FrozenClock(SYNCED_AT)
    return make_app(
        SERVER_URL,
        tui_store,
        clock=clock,
        transport=httpx.MockTransport(_refuse),
        monitor=offline_monitor(clock),
    )
