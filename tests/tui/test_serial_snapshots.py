"""Snapshots of the serial profile (ANSI theme, no portraits, no scrollbars) at 80x24 and
40x20: sign-in, the Register screen after a scan, the Synchronization screen.

As in the other snapshot tests nothing varies: the network refuses, the clock is frozen,
statuses are constructed. The bytes the serial profile sends (ASCII, only what changed) are
tested in tests/tui/test_serial_profile.py; a snapshot shows what Textual draws.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from muster_tui.app import MusterApp
from sync_core.device import DeviceStore
from tests.tui.helpers import CARDS, fill_register_ship, open_register, settle, show_status, succeeded_status
from tests.tui.serial_terminal import serial_app as offline_serial_app

SIZES = {"wide": (80, 24), "narrow": (40, 20)}


@pytest.fixture
def serial_app(tui_store: DeviceStore) -> MusterApp:
    """The app in the serial profile on ``tui_store``, offline, on a frozen clock."""
    return offline_serial_app(tui_store)


@pytest.mark.parametrize("size", SIZES)
def test_sign_in(snap_compare: Any, serial_app: MusterApp, size: str) -> None:
    async def type_credentials(pilot: Pilot[None]) -> None:
        await pilot.press(*"demo", "enter", *"secret")

    assert snap_compare(serial_app, terminal_size=SIZES[size], run_before=type_credentials)


@pytest.mark.parametrize("size", SIZES)
def test_register_after_a_scan(
    snap_compare: Any, serial_app: MusterApp, tui_store: DeviceStore, size: str
) -> None:
    fill_register_ship(tui_store)

    async def scan(pilot: Pilot[None]) -> None:
        await open_register(pilot, live=False, portraits=False)
        await pilot.press(*CARDS["P1"], "enter")
        await settle(pilot)

    assert snap_compare(serial_app, terminal_size=SIZES[size], run_before=scan)


@pytest.mark.parametrize("size", SIZES)
def test_synchronization(snap_compare: Any, serial_app: MusterApp, size: str) -> None:
    async def show(pilot: Pilot[None]) -> None:
        await show_status(pilot, succeeded_status())

    assert snap_compare(serial_app, terminal_size=SIZES[size], run_before=show)
