"""At the alarm the server may be too busy to answer a sign-in soon: a crew member synced to
the handheld is signed in offline at once, and the app joins the server in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.widgets import Label

from muster_tui.app import make_app
from muster_tui.screens.menu import MainMenuScreen
from sync_core.device import DeviceStore
from sync_core.protocol import API_PREFIX
from sync_core.server.process import ServerProcess
from tests.tui.helpers import settle

SIZE = (80, 24)


class _HeldSignIns(httpx.AsyncBaseTransport):
    """The real transport, except that sign-ins wait until ``release`` is set (a server
    busy with a burst)."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == f"{API_PREFIX}/sign-in":
            await self.release.wait()
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


@pytest.fixture
def device_store(device_store_path: Path) -> Iterator[DeviceStore]:
    store = DeviceStore(device_store_path)
    yield store
    store.close()


async def test_a_synced_crew_member_signs_in_offline_at_once_then_online_in_the_background(
    live_server: ServerProcess, device_store: DeviceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = make_app(live_server.url, device_store)
    async with synced.run_test(size=SIZE) as pilot:
        await pilot.press(*"demo", "enter", *"demo", "enter")
        await settle(pilot)
    monkeypatch.setattr("muster_tui.app.SYNCED_USER_WAIT", 0.2)
    busy = _HeldSignIns()
    app = make_app(live_server.url, device_store, transport=busy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"demo", "enter", *"demo", "enter")
        for _ in range(200):  # the menu comes while the server still holds the sign-in
            if isinstance(app.screen, MainMenuScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, MainMenuScreen)
        assert app.session is not None and not app.session.online
        busy.release.set()  # the server gets to the background sign-in
        await settle(pilot)
        assert app.session is not None and app.session.online
        assert "online" in str(app.screen.query_one("#signed-in", Label).content)
