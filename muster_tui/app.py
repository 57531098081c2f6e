"""The Muster app and its one factory, :func:`make_app`, used by the CLI and every test.

Flow: sign in -> main menu; on the first sign-in on this device for a server, the
Synchronization screen opens over the menu and runs the full sync (seed, "Synchronize from
Server to Device"). While an online session lasts, the delta timer runs (a delta sync every
``delta_sync_interval_minutes`` from the last completion) and so does the uploader (the
outbox drains at once after each registration, and after a backoff while the server does
not answer). Sign-out stops both and returns to sign-in with the password cleared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import tzinfo

import httpx
from textual import work
from textual.app import App

from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register_setup import RegisterDesk, RegisterSetupScreen
from muster_tui.screens.sign_in import SignInScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.portrait import can_show_pictures, stored_pictures
from sync_core.clock import Clock, SystemClock
from sync_core.device import DeviceStore, ServerClient, Session, SyncEngine, sign_in
from sync_core.device.registrar import Book, LocalBook, Post, Registrar
from sync_core.device.timer import DeltaTimer
from sync_core.device.upload import Uploader
from sync_core.errors import ServerUnreachable
from sync_core.protocol import SafetyMode


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

    TITLE = "Muster"
    CSS_PATH = "muster.tcss"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]  # noqa: RUF012 (Textual declares it)

    def __init__(
        self, client: ServerClient, store: DeviceStore, engine: SyncEngine, tz: tzinfo | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.store = store
        self.engine = engine
        self.tz = tz
        self.session: Session | None = None
        self.uploader: Uploader | None = None

    def on_mount(self) -> None:
        """Start at sign-in."""
        self._show_sign_in()

    async def on_unmount(self) -> None:
        """Close the connection pool to the server."""
        await self.client.aclose()

    def _show_sign_in(self, username: str = "") -> None:
        screen = SignInScreen(self.client.base_url, self._authenticate, username)
        self.push_screen(screen, callback=self._signed_in)

    async def _authenticate(self, username: str, password: str) -> SignedIn:
        session = await sign_in(self.client, self.store, username, password)
        server_id = session.server_id
        first_sync = server_id is not None and await asyncio.to_thread(self.engine.needs_full_sync, server_id)
        return SignedIn(session, first_sync)

    def _signed_in(self, signed_in: SignedIn | None) -> None:
        assert signed_in is not None
        session = self.session = signed_in.session
        self.push_screen(MainMenuScreen(session), callback=self._signed_out)
        if session.server_id is not None:
            self._delta_timer(session.server_id)
            self.uploader = Uploader(
                self.store.outbox, self.client, self.engine.clock, session.server_id, self.engine.show_upload
            )
            self._upload_loop(self.uploader)
        if signed_in.first_sync and session.server_id is not None:
            self.push_screen(SynchronizationScreen(self.engine, session.server_id, first_sign_in=True))

    def _signed_out(self, _: None) -> None:
        username = self.session.username if self.session else ""
        self.session = None
        self.uploader = None
        self.workers.cancel_group(self, "delta-timer")
        self.workers.cancel_group(self, "upload")
        self.client.forget_token()
        self._show_sign_in(username)

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
        point = await asyncio.to_thread(self.store.sync_point)
        if point is not None and self.session.server_id in (None, point.server_id):
            return LocalBook(self.store)
        if not self.session.online:
            raise ServerUnreachable(self.client.base_url, "this device has no synced data to work offline")
        return self.client

    def on_main_menu_screen_register_requested(self) -> None:
        """Open the Register set-up: safety mode, then muster station or lifeboat."""
        pictures = stored_pictures(self.store) if can_show_pictures(self) else None
        self.push_screen(RegisterSetupScreen(RegisterDesk(self.book, self.registrar, self.engine, pictures)))

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
) -> MusterApp:
    """The app for the server at ``server_url`` over the device ``store``.

    ``clock`` stamps sync times and registrations (default: the system clock), ``tz`` the
    time zone registrations are stamped in (default: the device's); ``transport`` lets
    tests inject an httpx transport. The caller owns ``store`` and closes it after the app.
    """
    client = ServerClient(server_url, transport=transport)
    engine = SyncEngine(store, client, clock or SystemClock())
    return MusterApp(client, store, engine, tz)
