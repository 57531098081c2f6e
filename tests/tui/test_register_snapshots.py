"""Snapshots of the Register set-up and the Register screen at 80x24 and 40x20 (portrait).

No server: a device store holding a hand-made ship (tests/tui/helpers.py,
:func:`fill_register_ship`: two stations, hostile names, two portraits drawn with Pillow, a
corrupt one), a frozen clock, registrations stamped in UTC. The counts are this device's
own, shown as live (what the server answers while only this device registered) on an app
whose connectivity probes all succeed, except in the offline snapshot (``offline_app``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.register_setup import RegisterDesk, RegisterSetupScreen
from muster_tui.widgets.portrait import stored_pictures
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore
from sync_core.device.connectivity import ConnectivityMonitor
from sync_core.device.registrar import Book, LocalBook, Registrar
from sync_core.protocol import ComponentState, Health, SafetyMode
from tests.tui.helpers import (
    CARDS,
    SERVER_ID,
    SERVER_URL,
    SYNCED_AT,
    fill_register_ship,
    open_register,
    registrar_on,
    settle,
)

SIZES = {"wide": (80, 24), "narrow": (40, 20)}


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused by the test transport", request=request)


async def _reached(host: str, port: int) -> None:
    """Every host answers."""


async def _healthy() -> Health:
    return Health(api=ComponentState.UP, db=ComponentState.UP, webapp=ComponentState.UP, server_id=SERVER_ID)


@pytest.fixture
def online_app(tui_store: DeviceStore) -> MusterApp:
    """The app on ``tui_store`` and a frozen clock, online: every connectivity probe
    succeeds (no request leaves the test; the refusing transport is never used)."""
    clock = FrozenClock(SYNCED_AT)
    monitor = ConnectivityMonitor(SERVER_URL, clock=clock, network=_reached, tcp=_reached, health=_healthy)
    refuse = httpx.MockTransport(_refuse)
    return make_app(SERVER_URL, tui_store, clock=clock, transport=refuse, monitor=monitor)


async def scan(pilot: Pilot[None], profile_id: str) -> None:
    """The card reader's burst for ``profile_id``'s card, then wait for the screen to settle."""
    await pilot.press(*CARDS[profile_id], "enter")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_set_up(snap_compare: Any, online_app: MusterApp, tui_store: DeviceStore, size: str) -> None:
    """The set-up: general assembly (the parameter) and station A (the default) highlighted."""
    fill_register_ship(tui_store)

    async def book() -> Book:
        return LocalBook(tui_store)

    async def registrar(mode: SafetyMode, place: str) -> Registrar:
        return await registrar_on(tui_store, online_app.engine.clock, mode, place, live=True)

    async def open_set_up(pilot: Pilot[None]) -> None:
        desk = RegisterDesk(book, registrar, online_app.engine, stored_pictures(tui_store))
        await online_app.push_screen(RegisterSetupScreen(desk))
        await settle(pilot)

    assert snap_compare(online_app, terminal_size=SIZES[size], run_before=open_set_up)


@pytest.mark.parametrize("size", SIZES)
def test_idle(snap_compare: Any, online_app: MusterApp, tui_store: DeviceStore, size: str) -> None:
    """Nobody scanned yet: counts, the missing list (hostile names literal), the hint."""
    fill_register_ship(tui_store)

    async def run_before(pilot: Pilot[None]) -> None:
        await open_register(pilot)

    assert snap_compare(online_app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_registered(snap_compare: Any, online_app: MusterApp, tui_store: DeviceStore, size: str) -> None:
    """A person of this station scanned: registered, the card with the portrait, counts moved."""
    fill_register_ship(tui_store)

    async def run_before(pilot: Pilot[None]) -> None:
        await open_register(pilot)
        await scan(pilot, "P1")

    assert snap_compare(online_app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("handling", [1, 2, 3])
def test_wrong_station(
    snap_compare: Any, online_app: MusterApp, tui_store: DeviceStore, handling: int, size: str
) -> None:
    """A person of station B scanned at A: registered (1), the prompt (2), refused (3); in 2
    and 3 their own station is highlighted."""
    fill_register_ship(tui_store, handling=handling)

    async def run_before(pilot: Pilot[None]) -> None:
        await open_register(pilot)
        await scan(pilot, "P2")

    assert snap_compare(online_app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_offline(snap_compare: Any, offline_app: MusterApp, tui_store: DeviceStore, size: str) -> None:
    """Offline: counts from this device only; a scan registers all the same."""
    fill_register_ship(tui_store)

    async def run_before(pilot: Pilot[None]) -> None:
        await open_register(pilot, live=False)
        await scan(pilot, "P1")

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_search(snap_compare: Any, online_app: MusterApp, tui_store: DeviceStore, size: str) -> None:
    """F6 and a partial name: the results under the search field, the first highlighted."""
    fill_register_ship(tui_store)

    async def run_before(pilot: Pilot[None]) -> None:
        await open_register(pilot)
        await pilot.press("f6", *"m")
        await settle(pilot)

    assert snap_compare(online_app, terminal_size=SIZES[size], run_before=run_before)
