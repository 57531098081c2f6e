"""The Muster app and its one factory, :func:`make_app`, used by the CLI and every test.

The app renders a :class:`~sync_core.device.runtime.DeviceRuntime` and drives it; it holds
no loops and no rules (those are the runtime's: sessions, connectivity reactions, the delta
timer, the uploader, the retention wipe, the session timeout). Flow: sign in -> main menu;
on the first sign-in on this device for a server, the Synchronization screen opens over the
menu and runs the full sync. When the runtime ends the session (sign-out, timeout, a
retention wipe) the app returns to sign-in saying why, or to the cleared screen.
"""

from __future__ import annotations

import os
from datetime import tzinfo

import httpx
from textual import events, work
from textual.app import App
from textual.driver import Driver
from textual.reactive import reactive

from muster_tui.screens.cleared import ClearedOfflineScreen, cleared_note
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register_setup import Chosen, RegisterDesk, RegisterSetupScreen
from muster_tui.screens.sign_in import SignInScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.terminal.profiles import ANSI_THEME, Profile
from muster_tui.widgets.portrait import can_show_pictures, stored_pictures
from sync_core.clock import Clock, SystemClock
from sync_core.device import DeviceStore, ServerClient, Session, SyncEngine
from sync_core.device.connectivity import VPN_TARGET_ENV, Connectivity, ConnectivityMonitor
from sync_core.device.registrar import Book, Post, Registrar
from sync_core.device.retention import WipeReport
from sync_core.device.runtime import DeviceRuntime, DeviceState, SignedIn
from sync_core.protocol import SafetyMode


class MusterApp(App[None]):
    """The handheld / terminal app over one device ``runtime``.

    The app closes the runtime on exit (its client and monitor); the store belongs to the
    caller. Registrations are stamped in the time zone ``tz`` (None: the device's).
    ``device_state`` is the runtime's latest state, ``connectivity`` its last probe round
    (the mode bar follows it).
    """

    device_state: reactive[DeviceState] = reactive(DeviceState, always_update=False)
    connectivity: reactive[Connectivity | None] = reactive(None)

    TITLE = "Muster"
    CSS_PATH = "muster.tcss"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]  # noqa: RUF012 (Textual declares it)

    def __init__(
        self, runtime: DeviceRuntime, tz: tzinfo | None = None, profile: Profile = Profile.FULL
    ) -> None:
        super().__init__(driver_class=serial_driver() if profile is Profile.SERIAL else None)
        if profile is not Profile.FULL:
            self.theme = ANSI_THEME
            self.add_class(f"-{profile}")
        self.runtime = runtime
        self.tz = tz
        self.profile = profile
        self.chosen = Chosen()  # the Register set-up's choice, kept for the session

    @property
    def engine(self) -> SyncEngine:
        """The runtime's sync engine."""
        return self.runtime.engine

    @property
    def store(self) -> DeviceStore:
        """The device store."""
        return self.runtime.store

    @property
    def client(self) -> ServerClient:
        """The client of the server."""
        return self.runtime.client

    @property
    def monitor(self) -> ConnectivityMonitor:
        """The connectivity monitor."""
        return self.runtime.monitor

    @property
    def session(self) -> Session | None:
        """The signed-in session, or None."""
        return self.runtime.session

    async def on_mount(self) -> None:
        """Follow the runtime and start it: the cleared screen after a retention wipe, else sign-in."""
        self.runtime.subscribe(self._published)
        self.device_state = self.runtime.state
        await self.runtime.start()
        if self.runtime.state.wipe is None:
            self._show_sign_in()

    async def on_unmount(self) -> None:
        """Stop the runtime and close its connections."""
        await self.runtime.aclose()

    async def on_event(self, event: events.Event) -> None:
        """Every key is activity: it keeps the session alive."""
        if isinstance(event, events.Key):
            self.runtime.note_activity()
        await super().on_event(event)

    def check_session_timeout(self) -> None:
        """Ask the runtime to check the session timeout now (it also does every 30 s)."""
        self.runtime.check_session_timeout()

    # -- following the runtime ----------------------------------------------------------

    def _published(self, state: DeviceState) -> None:
        self.device_state = state
        self.connectivity = state.connectivity

    def watch_device_state(self, old: DeviceState, new: DeviceState) -> None:
        """A wipe shows the cleared screen; a session that ended returns to sign-in, saying
        why; an offline session signed in with the server updates the open screens."""
        if new.wipe is not None and new.wipe is not old.wipe:
            self._leave_session()
            self._cleared(new.wipe)
        elif old.session is not None and new.session is None:
            self._leave_session()
            self._show_sign_in(old.session.username, new.ended)
        elif (
            old.session is not None
            and new.session is not None
            and new.session.online
            and not old.session.online
        ):
            self._now_online(new.session)

    def _now_online(self, session: Session) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, SynchronizationScreen) and session.server_id is not None:
                screen.session_online(session.server_id)
        self.notify(f"Online: signed in with the server as {session.username}", markup=False)

    def _leave_session(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    # -- sessions ---------------------------------------------------------------------

    def _show_sign_in(self, username: str = "", note: str | None = None) -> None:
        screen = SignInScreen(self.client.base_url, self.runtime.sign_in, username, note)
        self.push_screen(screen, callback=self._signed_in)

    def _signed_in(self, signed_in: SignedIn | None) -> None:
        assert signed_in is not None
        session = signed_in.session
        self.chosen = Chosen()
        self.push_screen(MainMenuScreen(session), callback=self._sign_out)
        if signed_in.first_sync and session.server_id is not None:
            self.push_screen(SynchronizationScreen(self.engine, session.server_id, first_sign_in=True))

    def _sign_out(self, _: None = None) -> None:
        self._signing_out()

    @work(group="sign-out", exclusive=True, exit_on_error=False)
    async def _signing_out(self) -> None:
        """Upload what waits, end the session (the runtime says what still waits)."""
        await self.runtime.sign_out()

    def _cleared(self, report: WipeReport) -> None:
        """After a retention wipe: the error screen until online, then sign-in (seed)."""
        if self.connectivity is not None and self.connectivity.online:
            self._show_sign_in(note=cleared_note(report.kept))
        else:
            self.push_screen(ClearedOfflineScreen(report.kept), callback=lambda _: self._show_sign_in())

    # -- the menu's choices -----------------------------------------------------------

    def on_main_menu_screen_synchronization_requested(self) -> None:
        """Open the Synchronization screen for the signed-in session's server."""
        server_id = self.session.server_id if self.session else None
        self.push_screen(SynchronizationScreen(self.engine, server_id))

    def on_synchronization_screen_sync_requested(self, message: SynchronizationScreen.SyncRequested) -> None:
        """Run the full sync the Synchronization screen asked for (the outbox first)."""
        self._full_sync(message.server_id)

    @work(group="full-sync", exit_on_error=False)
    async def _full_sync(self, server_id: str) -> None:
        await self.runtime.sync_now(server_id, full=True)

    def on_synchronization_screen_upload_retry_requested(self) -> None:
        """Queue the refused registrations again and upload."""
        self._retry_upload()

    @work(group="upload-retry", exclusive=True, exit_on_error=False)
    async def _retry_upload(self) -> None:
        await self.runtime.retry_upload()

    async def registrar(self, mode: SafetyMode, place: str) -> Registrar:
        """A registrar for ``place`` in ``mode`` for the signed-in crew member (see
        :meth:`DeviceRuntime.registrar`; raises its errors)."""
        assert self.session is not None
        return await self.runtime.registrar(
            Post(self.session.username, mode, place, self.engine.clock, self.tz)
        )

    async def book(self) -> Book:
        """Where the Register set-up finds the safety mode and the places (see
        :meth:`DeviceRuntime.book`)."""
        return await self.runtime.book()

    def on_main_menu_screen_register_requested(self) -> None:
        """Open the Register set-up: safety mode, then muster station or lifeboat."""
        portraits = self.profile is Profile.FULL and can_show_pictures(self)
        pictures = stored_pictures(self.store) if portraits else None
        desk = RegisterDesk(self.book, self.registrar, self.engine, pictures, self.chosen)
        self.push_screen(RegisterSetupScreen(desk))


def serial_driver() -> type[Driver]:
    """The serial profile's driver (imported here: pyte costs 0.1 s at start-up)."""
    from muster_tui.terminal.diff_driver import DiffDriver

    return DiffDriver


def make_app(
    server_url: str,
    store: DeviceStore,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    tz: tzinfo | None = None,
    monitor: ConnectivityMonitor | None = None,
    profile: Profile = Profile.FULL,
) -> MusterApp:
    """The app for the server at ``server_url`` over the device ``store``.

    ``clock`` stamps sync times and registrations (default: the system clock), ``tz`` the
    time zone registrations are stamped in (default: the device's); ``transport`` lets
    tests inject an httpx transport, ``monitor`` a connectivity monitor (default: real
    probes of ``server_url`` and of the VPN target in ``MUSTER_VPN_TARGET``, on the system
    clock), ``profile`` the terminal profile. The caller owns ``store`` and closes it after
    the app.
    """
    client = ServerClient(server_url, transport=transport)
    monitor = monitor or ConnectivityMonitor(server_url, os.environ.get(VPN_TARGET_ENV))
    return MusterApp(DeviceRuntime(store, client, monitor, clock or SystemClock()), tz, profile)
