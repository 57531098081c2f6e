"""Snapshots of the sign-in, main menu and Synchronization screens at 80x24 and 40x20 (portrait).

Nothing varies between runs: no server (the network refuses), a frozen clock, constructed
statuses with fixed figures, no blinking cursor, animations off (TEXTUAL_ANIMATIONS=none).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.cleared import ClearedOfflineScreen
from muster_tui.screens.menu import MainMenuScreen
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, Session
from sync_core.device.connectivity import ConnectivityMonitor
from tests.tui.helpers import (
    SERVER_ID,
    SERVER_URL,
    STATUSES,
    SYNCED_AT,
    UPLOADS,
    settle,
    show_status,
    upload_status,
)

SIZES = {"wide": (80, 24), "narrow": (40, 20)}
SESSION = Session(username="demo", display_name="Demo Crew", role="crew", server_id=SERVER_ID, online=True)


@pytest.mark.parametrize("size", SIZES)
def test_sign_in(snap_compare: Any, offline_app: MusterApp, size: str) -> None:
    """The sign-in screen: title, server address, username, masked password."""

    async def type_credentials(pilot: Pilot[None]) -> None:
        await pilot.press(*"demo", "enter", *"secret")

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=type_credentials)


@pytest.mark.parametrize("size", SIZES)
def test_sign_in_unreachable(snap_compare: Any, offline_app: MusterApp, size: str) -> None:
    """The server could not be reached: its message (naming the address) and Retry."""

    async def sign_in(pilot: Pilot[None]) -> None:
        await pilot.press(*"demo", "enter", *"secret", "enter")
        await settle(pilot)

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=sign_in)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", STATUSES)
def test_synchronization(snap_compare: Any, offline_app: MusterApp, state: str, size: str) -> None:
    """The Synchronization screen showing a constructed status, details expanded."""

    async def open_details(pilot: Pilot[None]) -> None:
        screen = await show_status(pilot, STATUSES[state]())
        await pilot.press("f4")
        screen.query_one("#sync-body").scroll_home(animate=False)

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=open_details)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("upload", UPLOADS)
def test_synchronization_upload(snap_compare: Any, offline_app: MusterApp, upload: str, size: str) -> None:
    """ "Synchronize offline data to server": offline with registrations waiting, and after
    the server refused one (its reason, Retry upload)."""

    async def scroll_to_upload(pilot: Pilot[None]) -> None:
        screen = await show_status(pilot, upload_status(upload))
        screen.query_one("#sync-body").scroll_end(animate=False)

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=scroll_to_upload)


@pytest.mark.parametrize("size", SIZES)
def test_main_menu(snap_compare: Any, tui_store: DeviceStore, size: str) -> None:
    """The main menu of a crew member signed in with the server, online (the menu line and
    the mode bar agree)."""
    clock = FrozenClock(SYNCED_AT)
    app = make_app(SERVER_URL, tui_store, clock=clock, monitor=_online_monitor(clock))

    async def open_menu(pilot: Pilot[None]) -> None:
        await settle(pilot)
        app.runtime._publish(session=SESSION)  # signed in with the server (no server here)
        await pilot.app.push_screen(MainMenuScreen(SESSION))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=open_menu)


def _online_monitor(clock: FrozenClock) -> ConnectivityMonitor:
    """Every probe passes and /health says every component is up."""

    async def reach(host: str, port: int) -> None:
        return None

    health = {"api": "up", "db": "up", "webapp": "up", "server_id": SERVER_ID}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=health))
    return ConnectivityMonitor(SERVER_URL, clock=clock, network=reach, tcp=reach, transport=transport)


@pytest.mark.parametrize("size", SIZES)
def test_sign_in_online(snap_compare: Any, tui_store: DeviceStore, size: str) -> None:
    """The mode bar when every dependency answers: Online."""
    clock = FrozenClock(SYNCED_AT)
    app = make_app(SERVER_URL, tui_store, clock=clock, monitor=_online_monitor(clock))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_cleared_offline(snap_compare: Any, offline_app: MusterApp, size: str) -> None:
    """After a retention wipe while offline: the persistent error, 3 registrations kept."""

    async def show_cleared(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(ClearedOfflineScreen(3))
        await settle(pilot)

    assert snap_compare(offline_app, terminal_size=SIZES[size], run_before=show_cleared)
