"""An online handheld follows the ship's safety mode: the office starts abandon ship from the
dashboard (real chromium), and the Register screen of a handheld registering in general
assembly says so; F4 goes back to the set-up with abandon ship chosen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect
from textual.pilot import Pilot
from textual.widgets import Label

from muster_tui.app import make_app
from muster_tui.screens.register import RegisterScreen
from muster_tui.screens.register_setup import RegisterSetupScreen
from sync_core.device import DeviceStore
from sync_core.protocol import SafetyMode
from sync_core.server.process import ServerProcess
from tests.browser import chromium, signed_in
from tests.tui.helpers import settle

SIZE = (80, 24)
# The monitor probes /health every 2 s; a round may take up to its 2 s timeout.
FOLLOWS_WITHIN = 6.0


@pytest.fixture
def device_store(device_store_path: Path) -> Iterator[DeviceStore]:
    store = DeviceStore(device_store_path)
    yield store
    store.close()


async def until_shown(pilot: Pilot[None], line: Label) -> None:
    for _ in range(int(FOLLOWS_WITHIN / 0.05)):
        if line.has_class("-shown"):
            return
        await pilot.pause(0.05)
    raise AssertionError("the mode-changed line did not show")


async def test_a_mode_started_on_the_dashboard_reaches_an_online_handheld(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    app = make_app(own_server.url, device_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"demo", "enter", *"demo", "enter")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("f5")  # the default: general assembly at station A
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen) and screen.registrar.mode is SafetyMode.GENASS
        line = screen.query_one("#mode-changed", Label)
        assert not line.has_class("-shown") and not screen.check_action("change_mode", ())

        async with chromium() as browser:
            page = await signed_in(browser, own_server.url)
            await page.click("button[value=ASHSHP]")
            await expect(page.locator("#safety-mode")).to_contain_text("Abandon ship (ASHSHP)")
        await until_shown(pilot, line)
        assert str(line.content) == "Safety mode has changed to Abandon ship: F4 Change"
        assert screen.registrar.mode is SafetyMode.GENASS  # the session keeps its mode until F4

        await pilot.press("f4")
        await settle(pilot)
        set_up = app.screen
        assert isinstance(set_up, RegisterSetupScreen) and set_up.mode is SafetyMode.ASHSHP
