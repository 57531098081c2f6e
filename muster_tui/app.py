"""The Muster app and its one factory, :func:`make_app`, used by the CLI and every test.

Flow: sign in -> main menu; on the first sign-in on this device for a server, the
Synchronization screen opens over the menu and runs the full sync (seed, "Synchronize from
Server to Device"). While an online session lasts, the delta timer runs (a delta sync every
``delta_sync_interval_minutes`` from the last completion) and so does the uploader (the
outbox drains at once after each registration, and after a backoff while the server does
not answer). Sign-out first tries to upload what waits, says how many remain, stops both
and returns to sign-in with the password cleared.

Online / offline (docs/architecture.md, 'Online and offline'): a connectivity monitor probes the
server's dependencies all the time; the mode bar on every screen shows the result. Going online
drains the outbox, and a session signed in offline is signed in with the server in the background
(the password is kept in memory for that only). Going offline shows the upload as Not started. A
session ends after ``session_timeout_minutes`` without a key. The retention wipe is checked at start
and every ``RETENTION_CHECK_SECONDS``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, tzinfo

import httpx
from textual import events, work
from textual.app import App
from textual.reactive import reactive

from muster_tui.screens.cleared import ClearedOfflineScreen, cleared_note
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register_setup import Chosen, RegisterDesk, RegisterSetupScreen
from muster_tui.screens.sign_in import SignInScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.portrait import can_show_pictures, stored_pictures
from sync_core.clock import Clock, SystemClock
from sync_core.device import DeviceStore, ServerClient, Session, SyncEngine, sign_in
from sync_core.device.connectivity import VPN_TARGET_ENV, Connectivity, ConnectivityMonitor
from sync_core.device.registrar import Book, LocalBook, Post, Registrar, device_data_for
from sync_core.device.retention import WipeReport, wipe_if_due
from sync_core.device.session import SYNCED_USER_WAIT
from sync_core.device.sign_in_rules import session_expired
from sync_core.device.timer import DeltaTimer
from sync_core.device.upload import Uploader
from sync_core.protocol import SafetyMode, SyncState
from sync_core.wording import counted

RETENTION_CHECK_SECONDS = 3600.0
SESSION_CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in, and whether it is the first on this device for the server."""

    session: Session
    first_sync: bool


class MusterApp(App[None]):
    """The handheld / terminal app over one server ``client`` and one device ``store``.

    The app closes ``client`` on exit; ``store`` belongs to the caller. Registrations are
    stamped in the time zone ``tz`` (None: the device's local time zone).
    """

    connectivity: reactive[Connectivity | None] = reactive(None)

    TITLE = "Muster"
    CSS_PATH = "muster.tcss"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]  # noqa: RUF012 (Textual declares it)

    def __init__(
        self,
        client: ServerClient,
        store: DeviceStore,
        engine: SyncEngine,
        monitor: ConnectivityMonitor,
        tz: tzinfo | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.store = store
        self.engine = engine
        self.monitor = monitor
        self.tz = tz
        self.session: Session | None = None
        self.uploader: Uploader | None = None
        self._offline_password: str | None = None  # to sign in with the server once online
        self.last_activity: datetime = engine.clock.now()
        self.chosen = Chosen()  # the Register set-up's choice, kept for the session

    async def on_mount(self) -> None:
        """Check the retention wipe, start probing, then sign-in (or the cleared error)."""
        self.monitor.subscribe(self._connectivity_changed)
        self._probe()
        self.set_interval(RETENTION_CHECK_SECONDS, self._check_retention)
        self.set_interval(SESSION_CHECK_SECONDS, self.check_session_timeout)
        report = await wipe_if_due(self.store, self.engine.clock.now())
        if report is not None:
            self._cleared(report)
        else:
            self._show_sign_in()

    async def on_unmount(self) -> None:
        """Close the connection pools to the server."""
        await self.client.aclose()
        await self.monitor.aclose()

    async def on_event(self, event: events.Event) -> None:
        """Every key is activity: it keeps the session alive. Only the time is noted here
        (a card burst stays cheap); the session check writes the device's last use."""
        if isinstance(event, events.Key):
            self.last_activity = self.engine.clock.now()
        await super().on_event(event)

    # -- online / offline -------------------------------------------------------------

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def _probe(self) -> None:
        await self.monitor.run()

    def _connectivity_changed(self, connectivity: Connectivity) -> None:
        self.connectivity = connectivity

    def watch_connectivity(self, old: Connectivity | None, new: Connectivity | None) -> None:
        """Going online drains the outbox, signs an offline session in with the server, and
        runs again a sync that failed (without waiting for the timer's retry); going offline
        shows the upload as Not started (seed)."""
        if new is None or (old is not None and old.online == new.online):
            return
        if new.online:
            if self.uploader is not None:
                self.uploader.kick()
            session = self.session
            if session is not None and not session.online and self._offline_password:
                self._go_online(session.username, self._offline_password)
            elif session is not None and session.server_id and self.engine.status.status is SyncState.FAILED:
                self._sync_again(session.server_id)
        elif self.engine.status.upload.status is not SyncState.NOT_STARTED:
            upload = self.engine.status.upload.model_copy(update={"status": SyncState.NOT_STARTED})
            self.engine.show_upload(upload)

    @work(group="sync-again", exclusive=True, exit_on_error=False)
    async def _sync_again(self, server_id: str) -> None:
        await self.engine.sync(server_id)

    @work(group="go-online", exclusive=True, exit_on_error=False)
    async def _go_online(self, username: str, password: str) -> None:
        signed_in = await self._authenticate(username, password, background=True)
        if signed_in.session.online and self.session is not None and self.session.username == username:
            self._offline_password = None
            session = self.session = signed_in.session
            self._start_session_work(session)
            for screen in self.screen_stack:
                if isinstance(screen, MainMenuScreen):
                    screen.session_online(session)
                elif isinstance(screen, SynchronizationScreen) and session.server_id is not None:
                    screen.session_online(session.server_id)
            self.notify(f"Online: signed in with the server as {username}", markup=False)

    # -- sessions ---------------------------------------------------------------------

    def _show_sign_in(self, username: str = "") -> None:
        screen = SignInScreen(self.client.base_url, self._authenticate, username)
        self.push_screen(screen, callback=self._signed_in)

    async def _authenticate(self, username: str, password: str, background: bool = False) -> SignedIn:
        """Sign in; a synced crew member waits for the server only briefly, unless this is
        the background join of an offline session (``background``)."""
        wait = None if background else SYNCED_USER_WAIT
        session = await sign_in(
            self.client, self.store, username, password, clock=self.engine.clock, synced_wait=wait
        )
        server_id = session.server_id
        first_sync = server_id is not None and await asyncio.to_thread(self.engine.needs_full_sync, server_id)
        self._offline_password = None if session.online else password
        return SignedIn(session, first_sync)

    def _signed_in(self, signed_in: SignedIn | None) -> None:
        assert signed_in is not None
        session = self.session = signed_in.session
        self.last_activity = self.engine.clock.now()
        self.chosen = Chosen()
        self.push_screen(MainMenuScreen(session), callback=self._sign_out)
        self._start_session_work(session)
        online = self.connectivity is not None and self.connectivity.online
        if not session.online and online and self._offline_password:
            self._go_online(session.username, self._offline_password)  # the server was slow to answer
        if signed_in.first_sync and session.server_id is not None:
            self.push_screen(SynchronizationScreen(self.engine, session.server_id, first_sign_in=True))

    def _start_session_work(self, session: Session) -> None:
        """The delta timer and the uploader of an online session, and at once a sync that
        had failed (e.g. because the last session had ended)."""
        if session.server_id is None:
            return
        if self.engine.status.status is SyncState.FAILED:
            self._sync_again(session.server_id)
        self._delta_timer(session.server_id)
        self.uploader = Uploader(
            self.store.outbox, self.client, self.engine.clock, session.server_id, self.engine.show_upload
        )
        self._upload_loop(self.uploader)

    def _sign_out(self, _: None = None) -> None:
        self._signing_out()

    @work(group="sign-out", exclusive=True, exit_on_error=False)
    async def _signing_out(self, reason: str | None = None) -> None:
        """Upload what waits ('Nothing unsynced is lost silently'), end the session and return to sign-in."""
        uploader, username = self.uploader, self.session.username if self.session else ""
        self._end_session()
        if uploader is not None:
            left = (await uploader.drain()).pending
            if left:
                self.notify(f"Kept, waiting for upload: {counted(left, 'registration')}", markup=False)
        if reason:
            self.notify(reason, markup=False)
        self._show_sign_in(username)

    def _end_session(self) -> None:
        self.session = None
        self.uploader = None
        self._offline_password = None
        for group in ("delta-timer", "upload", "go-online"):
            self.workers.cancel_group(self, group)
        self.client.forget_token()
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def check_session_timeout(self) -> None:
        """End the session after ``session_timeout_minutes`` without a key."""
        now = self.engine.clock.now()
        if self.session is None:
            return
        if session_expired(self.last_activity, now, self.store):
            self._signing_out("Session timed out: sign in again")
        else:
            self.store.touch(self.last_activity)  # at most one write a minute (retention count)

    # -- retention ----------------------------------------------------------------------

    async def _check_retention(self) -> None:
        online = self.connectivity is not None and self.connectivity.online
        report = await wipe_if_due(self.store, self.engine.clock.now(), self.uploader if online else None)
        if report is not None:
            self._end_session()
            self._cleared(report)

    def _cleared(self, report: WipeReport) -> None:
        """After a retention wipe: the error screen until online, then sign-in (seed)."""
        self.engine.reload()
        if self.connectivity is not None and self.connectivity.online:
            self.notify(cleared_note(report.kept), markup=False)
            self._show_sign_in()
        else:
            self.push_screen(ClearedOfflineScreen(report.kept), callback=lambda _: self._show_sign_in())

    def on_main_menu_screen_synchronization_requested(self) -> None:
        """Open the Synchronization screen for the signed-in session's server."""
        server_id = self.session.server_id if self.session else None
        self.push_screen(SynchronizationScreen(self.engine, server_id))

    def on_synchronization_screen_sync_requested(self, message: SynchronizationScreen.SyncRequested) -> None:
        """Run the full sync the Synchronization screen asked for."""
        self._full_sync(message.server_id)

    async def registrar(self, mode: SafetyMode, place: str) -> Registrar:
        """A registrar for ``place`` in ``mode`` for the signed-in crew member (see
        :meth:`Registrar.for_session`; raises its errors)."""
        assert self.session is not None
        post = Post(self.session.username, mode, place, self.engine.clock, self.tz)
        queued = self.uploader.kick if self.uploader else lambda: None
        return await Registrar.for_session(self.store, self.client, self.session, queued, post)

    async def book(self) -> Book:
        """Where the Register set-up finds the safety mode and the places, by the rule of
        :meth:`Registrar.for_session`: the device store when it holds the data of the
        session's server (or the session is offline), else the server. Raises
        ServerUnreachable when the device never synced and the session is offline."""
        assert self.session is not None
        on_device = await device_data_for(self.store, self.client, self.session)
        return LocalBook(self.store) if on_device is not None else self.client

    def on_main_menu_screen_register_requested(self) -> None:
        """Open the Register set-up: safety mode, then muster station or lifeboat."""
        pictures = stored_pictures(self.store) if can_show_pictures(self) else None
        desk = RegisterDesk(self.book, self.registrar, self.engine, pictures, self.chosen)
        self.push_screen(RegisterSetupScreen(desk))

    def on_synchronization_screen_upload_retry_requested(self) -> None:
        """Queue the refused registrations again and upload."""
        if self.uploader is not None:
            self._retry_upload(self.uploader)

    @work(group="upload-retry", exclusive=True, exit_on_error=False)
    async def _retry_upload(self, uploader: Uploader) -> None:
        await uploader.retry()

    @work(group="full-sync", exit_on_error=False)
    async def _full_sync(self, server_id: str) -> None:
        if self.uploader is not None:  # seed: offline data goes to the server first
            await self.uploader.drain()
        await self.engine.sync(server_id, full=True)

    @work(group="upload", exclusive=True, exit_on_error=False)
    async def _upload_loop(self, uploader: Uploader) -> None:
        await uploader.run()

    @work(group="delta-timer", exclusive=True, exit_on_error=False)
    async def _delta_timer(self, server_id: str) -> None:
        await DeltaTimer(self.engine, server_id).run()


def make_app(
    server_url: str,
    store: DeviceStore,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    tz: tzinfo | None = None,
    monitor: ConnectivityMonitor | None = None,
) -> MusterApp:
    """The app for the server at ``server_url`` over the device ``store``.

    ``clock`` stamps sync times and registrations (default: the system clock), ``tz`` the
    time zone registrations are stamped in (default: the device's); ``transport`` lets
    tests inject an httpx transport, ``monitor`` a connectivity monitor (default: real
    probes of ``server_url`` and of the VPN target in ``MUSTER_VPN_TARGET``, on the system
    clock). The caller owns ``store`` and closes it after the app.
    """
    client = ServerClient(server_url, transport=transport)
    engine = SyncEngine(store, client, clock or SystemClock())
    monitor = monitor or ConnectivityMonitor(server_url, os.environ.get(VPN_TARGET_ENV))
    return MusterApp(client, store, engine, monitor, tz)
