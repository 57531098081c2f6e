"""Pilot tests of sign-in, first full sync, menu and sign-out against the real server.

``live_server`` (the `small` ship on 127.0.0.1) and ``device_store_path`` come from
tests/conftest.py; fixture user demo/demo (crew).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, Collapsible, Input, Label

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.sign_in import SignInScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.dataset_table import DatasetRow
from muster_tui.widgets.utc_time import format_utc
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient
from sync_core.errors import InvalidLogin
from sync_core.protocol import DATASET_LABELS, RecordChange, SyncState
from sync_core.server.process import ServerProcess
from tests.tui.helpers import SYNCED_AT, settle

CLOSED_PORT_URL = "http://127.0.0.1:9"
SIZE = (80, 24)


@pytest.fixture
def device_store(device_store_path: Path) -> Iterator[DeviceStore]:
    """A fresh device store, closed after the test (the app does not own it)."""
    store = DeviceStore(device_store_path)
    yield store
    store.close()


async def sign_in(pilot: Pilot[None], username: str, password: str) -> None:
    """Type the credentials, Enter after each, and wait for the sign-in and what follows."""
    await pilot.press(*username, "enter", *password, "enter")
    await settle(pilot)


def outcome(app: MusterApp) -> str:
    """The sign-in screen's outcome line."""
    return str(app.screen.query_one("#outcome", Label).content)


async def test_first_sign_in_runs_full_sync_then_shows_menu(
    live_server: ServerProcess, device_store: DeviceStore
) -> None:
    seen: list[Message] = []
    app = make_app(live_server.url, device_store)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await sign_in(pilot, "demo", "demo")
        assert any(isinstance(message, SynchronizationScreen.SyncRequested) for message in seen)
        assert isinstance(app.screen, MainMenuScreen)
        status = app.engine.status
        assert status.status is SyncState.SUCCESS
        assert all(row.count > 0 for row in status.datasets.values())
        assert "online" in str(app.screen.query_one("#signed-in", Label).content)


async def test_wrong_password_stays_on_sign_in(live_server: ServerProcess, device_store: DeviceStore) -> None:
    app = make_app(live_server.url, device_store)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "not-the-password")
        assert isinstance(app.screen, SignInScreen)
        assert outcome(app) == str(InvalidLogin()) == "Invalid login, please try again"
        assert app.screen.query_one("#username", Input).value == "demo"
        assert not app.screen.query_one("#retry", Button).display


async def test_unreachable_server_offers_retry(device_store: DeviceStore) -> None:
    app = make_app(CLOSED_PORT_URL, device_store)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "demo")
        assert isinstance(app.screen, SignInScreen)
        assert CLOSED_PORT_URL in outcome(app)
        assert app.screen.query_one("#retry", Button).display
        await pilot.press("f5")
        await settle(pilot)
        assert CLOSED_PORT_URL in outcome(app)
        assert app.screen.query_one("#retry", Button).display


async def test_synchronization_from_menu_shows_dataset_rows(
    live_server: ServerProcess, device_store: DeviceStore
) -> None:
    app = make_app(live_server.url, device_store)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "demo")
        await pilot.press("f3")
        assert isinstance(app.screen, SynchronizationScreen)
        details = app.screen.query_one(Collapsible)
        assert details.collapsed
        await pilot.press("f4")
        assert not details.collapsed
        rows = list(app.screen.query(DatasetRow))
        assert [row.key for row in rows] == list(DATASET_LABELS)
        assert all(row.region.height > 0 for row in rows)


async def test_sign_out_clears_password_and_next_sign_in_skips_sync(
    live_server: ServerProcess, device_store: DeviceStore
) -> None:
    seen: list[Message] = []
    app = make_app(live_server.url, device_store)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await sign_in(pilot, "demo", "demo")
        await pilot.press("f8")
        assert isinstance(app.screen, SignInScreen)
        assert app.screen.query_one("#username", Input).value == "demo"
        assert app.screen.query_one("#password", Input).value == ""
        seen.clear()
        await pilot.press(*"demo", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainMenuScreen)
        assert not any(isinstance(message, SynchronizationScreen.SyncRequested) for message in seen)


async def test_synced_device_signs_in_offline(live_server: ServerProcess, device_store: DeviceStore) -> None:
    online = make_app(live_server.url, device_store)
    async with online.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "demo")
    offline = make_app(CLOSED_PORT_URL, device_store)
    async with offline.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "demo")
        assert isinstance(offline.screen, MainMenuScreen)
        assert "offline" in str(offline.screen.query_one("#signed-in", Label).content)


async def test_delta_timer_runs_after_sign_in_and_the_screen_shows_it(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock = FrozenClock(SYNCED_AT)
    app = make_app(own_server.url, device_store, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "demo", "demo")
        async with ServerClient(own_server.url) as office:
            await office.sign_in("office", "office")
            await office.post_changes(
                [RecordChange(key="lifeboats", id="LB01", op="set", fields={"description": "Aft"})]
            )
        for _ in range(6):  # the crew member keeps using the device: the session lasts
            app.runtime.note_activity()
            clock.advance(5 * 60)
            await pilot.pause()
        for _ in range(200):
            await pilot.pause(0.02)
            if app.engine.status.kind == "delta" and not app.engine.status.running:
                break
        assert app.engine.status.status is SyncState.SUCCESS
        assert app.engine.status.datasets["lifeboats"].changes == 1
        await pilot.press("f3")
        shown = app.screen.query_one("#last-delta-sync", Label).content
        assert str(shown) == format_utc(SYNCED_AT + timedelta(minutes=30))
