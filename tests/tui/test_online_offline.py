"""Online / offline mode in the app, session timeout and the retention wipe, with
a frozen clock and a connectivity monitor whose probe results the test sets; the server is
the real one where a flow needs it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from textual.widgets import Label

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.cleared import CANNOT_CONNECT, ClearedOfflineScreen
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.sign_in import SignInScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.mode_bar import ModeBar
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore
from sync_core.device.connectivity import ConnectivityMonitor
from sync_core.protocol import SafetyMode, SyncState
from sync_core.server.process import ServerProcess
from tests.registering import Network, onboard_cards, server_registered
from tests.tui.helpers import SYNCED_AT, offered_actions, settle

SIZE = (80, 24)
DAY = timedelta(days=1)


class Switch:
    """Probe results the test sets: every probe passes while ``up``, else fails at once."""

    def __init__(self, up: bool) -> None:
        self.up = up

    async def reach(self, host: str, port: int) -> None:
        if not self.up:
            raise OSError(f"{host}:{port} unreachable (test)")


def scripted_monitor(url: str, switch: Switch, clock: FrozenClock) -> ConnectivityMonitor:
    """A monitor of the real server at ``url`` whose network and TCP probes follow ``switch``
    (the health request goes to the real server, or fails while the switch is down)."""

    def health_transport() -> httpx.AsyncBaseTransport:
        real = httpx.AsyncHTTPTransport()

        class Gate(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if not switch.up:
                    raise httpx.ConnectError("down (test)", request=request)
                return await real.handle_async_request(request)

            async def aclose(self) -> None:
                await real.aclose()

        return Gate()

    return ConnectivityMonitor(
        url, clock=clock, network=switch.reach, tcp=switch.reach, transport=health_transport()
    )


def scripted_app(
    url: str, store: DeviceStore, clock: FrozenClock, switch: Switch, network: Network | None = None
) -> MusterApp:
    """The app on ``store`` with ``scripted_monitor`` probes, the frozen ``clock`` and, when
    given, requests through ``network``."""
    return make_app(url, store, clock=clock, transport=network, monitor=scripted_monitor(url, switch, clock))


@pytest.fixture
def device_store(device_store_path: Path) -> Iterator[DeviceStore]:
    store = DeviceStore(device_store_path)
    yield store
    store.close()


async def _sign_in(pilot: object, username: str = "demo", password: str = "demo") -> None:
    await pilot.press(*username, "enter", *password, "enter")  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]


async def _offline_after_a_sync(url: str, store: DeviceStore, switch: Switch, network: Network) -> MusterApp:
    """A first app signs in and syncs ``store``; then the network goes down (``switch`` and
    ``network``) and the app returned is a second one on the same store, not started yet."""
    clock = FrozenClock(SYNCED_AT)
    synced = scripted_app(url, store, clock, switch)
    async with synced.run_test(size=SIZE) as pilot:
        await _sign_in(pilot)
        assert synced.engine.status.status is SyncState.SUCCESS
    switch.up, network.down = False, True
    return scripted_app(url, store, clock, switch, network)


def _bar(app: MusterApp) -> str:
    return str(app.screen.query_one(ModeBar).content)


async def _rounds(app: MusterApp, pilot: object, count: int = 1) -> None:
    for _ in range(count):
        await app.monitor.check()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_going_online_signs_an_offline_session_in_and_drains_the_outbox(
    own_server: ServerProcess, ship_dir: Path, device_store: DeviceStore
) -> None:
    switch, network = Switch(up=True), Network()
    app = await _offline_after_a_sync(own_server.url, device_store, switch, network)
    station = onboard_cards(ship_dir, count=1)[0][2]
    async with app.run_test(size=SIZE) as pilot:
        await _rounds(app, pilot, 2)
        assert _bar(app).startswith("Offline: network down")
        await _sign_in(pilot)
        assert isinstance(app.screen, MainMenuScreen) and app.session is not None and not app.session.online
        registrar = await app.registrar(SafetyMode.GENASS, station)
        for card, _, _ in onboard_cards(ship_dir, station, 3):
            await registrar.scan(card)
        switch.up, network.down = True, False
        await _rounds(app, pilot)
        assert _bar(app) == "Online"
        for _ in range(100):
            await pilot.pause(0.05)
            if app.engine.status.upload.sent == 3:
                break
        assert app.session is not None and app.session.online
        assert app.engine.status.upload.pending == 0
    assert await server_registered(own_server, station) == 3


async def test_a_sync_that_failed_offline_runs_again_as_soon_as_online(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock, switch, network = FrozenClock(SYNCED_AT), Switch(up=True), Network()
    app = scripted_app(own_server.url, device_store, clock, switch, network)
    async with app.run_test(size=SIZE) as pilot:
        await _sign_in(pilot)
        assert app.engine.status.status is SyncState.SUCCESS
        switch.up, network.down = False, True
        await _rounds(app, pilot, 2)
        assert (await app.engine.delta_sync()).status is SyncState.FAILED
        switch.up, network.down = True, False
        await _rounds(app, pilot)  # the clock stands still: the timer's retry is not due
        await settle(pilot)
        status = app.engine.status
        assert status.status is SyncState.SUCCESS and status.kind == "delta"
        assert status.last_delta_sync == SYNCED_AT


async def test_open_screens_follow_an_offline_session_that_goes_online(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    switch, network = Switch(up=True), Network()
    app = await _offline_after_a_sync(own_server.url, device_store, switch, network)
    async with app.run_test(size=SIZE) as pilot:
        await _rounds(app, pilot, 2)
        await _sign_in(pilot)
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, SynchronizationScreen) and "Sync Now" not in offered_actions(screen)
        switch.up, network.down = True, False
        await _rounds(app, pilot)
        await settle(pilot)
        assert app.session is not None and app.session.online
        assert offered_actions(screen).get("Sync Now") is True
        assert not screen.query("#offline-note")
        (menu,) = [s for s in app.screen_stack if isinstance(s, MainMenuScreen)]
        assert str(menu.query_one("#signed-in", Label).content).endswith(", online")


async def test_signing_in_again_runs_a_failed_sync_at_once(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock, switch, network = FrozenClock(SYNCED_AT), Switch(up=True), Network()
    app = scripted_app(own_server.url, device_store, clock, switch, network)
    async with app.run_test(size=SIZE) as pilot:
        await _sign_in(pilot)
        network.down = True  # the monitor still says online: as when the session had ended
        assert (await app.engine.delta_sync()).status is SyncState.FAILED
        network.down = False
        await pilot.press("f8")
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        await _sign_in(pilot)  # the clock stands still: the timer's retry is not due
        await settle(pilot)
        status = app.engine.status
        assert (status.status, status.kind) == (SyncState.SUCCESS, "delta"), status.error


async def test_one_failed_round_keeps_online_and_two_show_offline(
    live_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock, switch = FrozenClock(SYNCED_AT), Switch(up=True)
    app = scripted_app(live_server.url, device_store, clock, switch)
    async with app.run_test(size=SIZE) as pilot:
        await _rounds(app, pilot)
        assert _bar(app) == "Online"
        switch.up = False
        await _rounds(app, pilot)
        assert _bar(app) == "Online"
        await _rounds(app, pilot)
        assert _bar(app).startswith("Offline: network down")
        assert app.screen.query_one(ModeBar).has_class("-offline")


async def test_a_session_ends_after_the_timeout_without_keys(
    live_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock, switch = FrozenClock(SYNCED_AT), Switch(up=True)
    app = scripted_app(live_server.url, device_store, clock, switch)
    async with app.run_test(size=SIZE) as pilot:
        await _sign_in(pilot)
        assert isinstance(app.screen, MainMenuScreen)
        minutes = int(device_store.parameter("session_timeout_minutes") or 15)
        clock.advance(60 * (minutes - 1))
        app.check_session_timeout()
        await settle(pilot)
        assert isinstance(app.screen, MainMenuScreen)
        clock.advance(60)
        app.check_session_timeout()
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        assert app.session is None


async def test_cleared_offline_stays_until_online_then_sign_in_runs_a_full_sync(
    own_server: ServerProcess, device_store: DeviceStore
) -> None:
    clock, switch = FrozenClock(SYNCED_AT), Switch(up=True)
    app = scripted_app(own_server.url, device_store, clock, switch)
    async with app.run_test(size=SIZE) as pilot:
        await _sign_in(pilot)
    days = int(device_store.parameter("retention_days") or 10)
    clock.advance(days * DAY.total_seconds())
    switch.up = False
    app = scripted_app(own_server.url, device_store, clock, switch)
    async with app.run_test(size=SIZE) as pilot:
        await _rounds(app, pilot)
        await settle(pilot)
        assert isinstance(app.screen, ClearedOfflineScreen)
        assert str(app.screen.query_one("#cannot-connect", Label).content) == CANNOT_CONNECT
        assert device_store.sync_point() is None
        await pilot.press("escape", "enter", "f9")
        assert isinstance(app.screen, ClearedOfflineScreen)
        switch.up = True
        await _rounds(app, pilot)
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        await _sign_in(pilot)
        assert device_store.sync_point() is not None
        assert app.engine.status.kind == "full" and app.engine.status.status is SyncState.SUCCESS


async def test_the_bar_names_every_dependency_down_and_wraps_when_narrow(offline_app: MusterApp) -> None:
    """Offline with several dependencies down: the first with its reason, the others by
    name; at 40 columns the bar wraps instead of cutting the reason."""
    async with offline_app.run_test(size=(40, 20)) as pilot:
        await _rounds(offline_app, pilot, 3)
        shown = _bar(offline_app)
        assert shown.startswith("Offline: network down - ") and "more)" not in shown
        assert shown.endswith(" · also down: server, api, db, webapp")
        bar = offline_app.screen.query_one(ModeBar)
        assert bar.size.height > 1 and bar.size.width * bar.size.height >= len(shown)
