"""The device runtime: the one place the handheld's rules live, for the app and ``muster sync --watch``.

:class:`DeviceRuntime` owns, over one device store and one server client:

- the **session**: sign-in (with the server, else offline against the synced users), sign-out
  (the outbox is uploaded first and what is left is said), and the session timeout
  (``session_timeout_minutes`` without activity ends it, saying so);
- the **connectivity reactions**: a probe round every few seconds; going online uploads the
  outbox, signs an offline session in with the server (its password is kept in memory for
  that only) and runs a delta sync (the device may have missed changes, or the last sync
  failed); going offline shows the upload as Not started;
- the **delta timer** and the **uploader** of an online session;
- the **retention wipe**, checked at start and every ``RETENTION_CHECK_SECONDS``;
- **Sync Now**: the outbox first, then the sync.

It publishes one observable :class:`DeviceState` (pydantic): the sync and upload status, the
mode and since when, the session, and why the last session ended. The app and the headless
commands subscribe and render; they hold no loops and no rules. See ``docs/architecture.md``
('The device runtime and its state').
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sync_core.clock import Clock, within
from sync_core.device.client import INTERACTIVE_DEADLINE, ServerClient
from sync_core.device.connectivity import Connectivity, ConnectivityMonitor, DependencyState, Mode
from sync_core.device.engine import SyncEngine
from sync_core.device.registrar import LIVE_FOR, Book, LocalBook, Post, Registrar, device_data_for
from sync_core.device.retention import WipeReport, wipe_if_due
from sync_core.device.session import SYNCED_USER_WAIT, Session, sign_in
from sync_core.device.sign_in_rules import session_expired
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore
from sync_core.device.timer import DeltaTimer
from sync_core.device.upload import Uploader
from sync_core.errors import SyncError
from sync_core.protocol import SyncState
from sync_core.wording import counted

log = logging.getLogger(__name__)
RETENTION_CHECK_SECONDS = 3600.0
SESSION_CHECK_SECONDS = 30.0
TIMED_OUT = "Session timed out: sign in again"


class DeviceState(BaseModel):
    """What the device is doing, as the app and the headless commands show it.

    ``sync``: the engine's status (with the upload's); ``mode``: online / offline since
    ``mode_since`` (None before the first probe round), ``connectivity``: the last probe
    round that changed something; ``server_answered_at``: the last probe round the server
    answered (device clock, UTC); ``session``: who is signed in (None: nobody);
    ``ended``: what the sign-in screen says after the last session ended (a timeout, the
    registrations still waiting), None after a plain sign-out; ``wipe``: the last retention
    wipe of this run, None when there was none.
    """

    model_config = ConfigDict(frozen=True)

    sync: SyncStatus = Field(default_factory=SyncStatus)
    mode: Mode = Mode.OFFLINE
    mode_since: AwareDatetime | None = None
    connectivity: Connectivity | None = None
    server_answered_at: AwareDatetime | None = None
    session: Session | None = None
    ended: str | None = None
    wipe: WipeReport | None = None

    @property
    def online(self) -> bool:
        """True in online mode."""
        return self.mode is Mode.ONLINE

    def counts_live(self, now: datetime) -> bool:
        """True when station counts come from the server: an online session, online, and the
        server answered less than ``LIVE_FOR`` before ``now``."""
        answered = self.server_answered_at
        session_online = self.session is not None and self.session.online
        return session_online and self.online and answered is not None and now - answered < LIVE_FOR


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in, and whether it is the first on this device for the server."""

    session: Session
    first_sync: bool


Subscriber = Callable[[DeviceState], None]


class DeviceRuntime:
    """The device's runtime over ``store``, the server behind ``client`` and ``monitor``'s
    probes, on ``clock``. Call :meth:`start` once on the running event loop and
    :meth:`aclose` at the end (it closes ``client`` and ``monitor``, not ``store``).

    An offline session keeps its password in memory (never in a store) to sign in with the
    server once online. An ``unattended`` runtime (``muster sync --watch``) has no session
    timeout: it keeps the device in use while it runs.
    """

    def __init__(
        self,
        store: DeviceStore,
        client: ServerClient,
        monitor: ConnectivityMonitor,
        clock: Clock,
        *,
        unattended: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.monitor = monitor
        self.clock = clock
        self.unattended = unattended
        self.engine = SyncEngine(store, client, clock)
        self.uploader: Uploader | None = None
        self.last_activity = clock.now()
        self._state = DeviceState(sync=self.engine.status)
        self._subscribers: list[Subscriber] = []
        self._password: str | None = None
        self._timing_out = False
        self._loops: list[asyncio.Task[None]] = []
        self._session_work: list[asyncio.Task[None]] = []
        self._chores: set[asyncio.Task[Any]] = set()
        self.engine.subscribe(lambda status: self._publish(sync=status))
        monitor.subscribe(self._connectivity_changed)

    # -- the state ------------------------------------------------------------------------

    @property
    def state(self) -> DeviceState:
        """The latest published state (immutable)."""
        return self._state

    @property
    def session(self) -> Session | None:
        """The signed-in session, or None."""
        return self._state.session

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new state; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _publish(self, **changes: Any) -> None:
        self._state = self._state.model_copy(update=changes)
        for callback in list(self._subscribers):
            callback(self._state)

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the retention wipe (a wipe is published in ``state.wipe``), then start the
        probe rounds, the hourly retention check and the session timeout check."""
        await self.check_retention()
        self._loops = [
            _task(self._probing()),
            _task(self._every(RETENTION_CHECK_SECONDS, self.check_retention)),
            _task(self._every(SESSION_CHECK_SECONDS, self._timeout_check)),
        ]

    async def aclose(self) -> None:
        """Stop every loop and chore, then close the client and the monitor."""
        await _cancel([*self._loops, *self._session_work, *self._chores])
        await self.client.aclose()
        await self.monitor.aclose()

    @property
    def busy(self) -> bool:
        """True while a one-off chore runs (see :meth:`idle`)."""
        return bool(self._chores)

    async def idle(self) -> None:
        """Wait until no one-off chore (a sync after going online, a sign-out...) runs."""
        while self._chores:
            await asyncio.gather(*self._chores, return_exceptions=True)

    def _chore(self, work: Coroutine[Any, Any, Any]) -> None:
        task = _task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _every(self, seconds: float, check: Callable[[], Awaitable[object]]) -> None:
        while True:
            await self.clock.sleep(seconds)
            await check()

    async def _timeout_check(self) -> None:
        self.check_session_timeout()

    # -- connectivity ---------------------------------------------------------------------

    async def _probing(self) -> None:
        """A probe round every ``monitor.interval`` seconds, start to start."""
        while True:
            started = self.clock.monotonic()
            connectivity = await self.monitor.check()
            if _answered(connectivity):
                self._publish(server_answered_at=connectivity.checked_at)
            wait = self.monitor.interval - (self.clock.monotonic() - started)
            await self.clock.sleep(max(0.0, wait))

    def _connectivity_changed(self, connectivity: Connectivity) -> None:
        """Publish the round; on a change of mode, react (see the module docstring)."""
        old = self._state.connectivity
        changed = old is None or old.mode is not connectivity.mode
        self._publish(
            connectivity=connectivity,
            mode=connectivity.mode,
            mode_since=connectivity.checked_at if changed else self._state.mode_since,
            server_answered_at=(
                connectivity.checked_at if _answered(connectivity) else self._state.server_answered_at
            ),
        )
        if old is None or not changed:
            return
        if connectivity.online:
            self._went_online()
        else:
            self._went_offline()

    def _went_online(self) -> None:
        if self.uploader is not None:
            self.uploader.kick()
        session = self.session
        if session is None:
            return
        if not session.online and self._password is not None:
            self._chore(self._sign_in_with_server(session.username, self._password))
        elif session.server_id is not None:
            self._chore(self.engine.sync(session.server_id))

    def _went_offline(self) -> None:
        upload = self.engine.status.upload
        if upload.status is not SyncState.NOT_STARTED:
            self.engine.show_upload(upload.model_copy(update={"status": SyncState.NOT_STARTED}))

    async def _sign_in_with_server(self, username: str, password: str) -> None:
        """Sign the offline session of ``username`` in with the server (going online)."""
        try:
            signed_in = await self.sign_in(username, password, waiting=False)
        except SyncError as exc:
            log.warning("signing %s in with the server failed: %s", username, exc)
            return
        server_id = signed_in.session.server_id
        if server_id is None:
            log.info("the server did not answer yet: %s stays signed in offline", username)
        else:  # the device may have missed changes while offline
            await self.engine.sync(server_id)

    # -- sessions -------------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, *, waiting: bool = True) -> SignedIn:
        """Sign ``username`` in (see :func:`sync_core.device.session.sign_in`; raises its
        errors) and start the session's work: with an online session, the delta timer, the
        uploader, and at once a sync that had failed.

        While a person waits (``waiting``, unless the runtime is unattended) a crew member
        synced to the device waits for the server only ``SYNCED_USER_WAIT`` seconds; past
        that the synced users decide, and when the device is online the server is asked
        again in the background. A device known to be offline asks the synced users at once."""
        wait = SYNCED_USER_WAIT if waiting and not self.unattended else None
        online = self._state.connectivity is None or self._state.online
        session = await sign_in(
            self.client,
            self.store,
            username,
            password,
            clock=self.clock,
            synced_wait=wait,
            server_answers=online,
        )
        server_id = session.server_id
        first_sync = server_id is not None and await asyncio.to_thread(self.engine.needs_full_sync, server_id)
        await _cancel(self._session_work)
        self._password = None if session.online else password
        self.last_activity = self.clock.now()
        self._publish(session=session, ended=None)
        if server_id is not None:
            self._start_session_work(server_id)
        elif self._state.online and wait is not None:  # the server was only slow
            self._chore(self._sign_in_with_server(username, password))
        return SignedIn(session, first_sync)

    def _start_session_work(self, server_id: str) -> None:
        if self.engine.status.status is SyncState.FAILED:
            self._chore(self.engine.sync(server_id))
        self.uploader = Uploader(
            self.store.outbox, self.client, self.clock, server_id, self.engine.show_upload
        )
        self._session_work = [_task(DeltaTimer(self.engine, server_id).run()), _task(self.uploader.run())]

    async def sign_out(self, reason: str | None = None) -> int:
        """Upload what waits (for at most ``INTERACTIVE_DEADLINE`` seconds), then end the
        session; returns the registrations still waiting. ``state.ended`` says ``reason``
        and how many still wait (None when neither)."""
        uploader, left = self.uploader, 0
        if uploader is not None:
            with contextlib.suppress(TimeoutError):
                await within(self.clock, INTERACTIVE_DEADLINE, uploader.drain())
            left = (await asyncio.to_thread(self.store.outbox.tally, uploader.server_id)).pending
        waiting = f"Kept, waiting for upload: {counted(left, 'registration')}" if left else None
        await self._end_session(" - ".join(part for part in (reason, waiting) if part) or None)
        return left

    async def _end_session(self, ended: str | None, **also: Any) -> None:
        await _cancel(self._session_work)
        self._session_work = []
        self.uploader = None
        self._password = None
        self._timing_out = False
        self.client.forget_token()
        self._publish(session=None, ended=ended, **also)

    def note_activity(self) -> None:
        """A key was pressed: the session stays alive (only the time is noted here)."""
        self.last_activity = self.clock.now()

    def check_session_timeout(self) -> None:
        """End the session after ``session_timeout_minutes`` without activity (saying so);
        else note the device's last use (the retention count)."""
        if self.session is None:
            return
        if self.unattended:
            self.store.touch(self.clock.now())
            return
        if session_expired(self.last_activity, self.clock.now(), self.store):
            if not self._timing_out:  # one sign-out, however often the check runs meanwhile
                self._timing_out = True
                self._chore(self.sign_out(TIMED_OUT))
        else:
            self.store.touch(self.last_activity)  # at most one write a check (retention count)

    # -- retention ------------------------------------------------------------------------

    async def check_retention(self) -> WipeReport | None:
        """Run the retention wipe when due (uploading first when online); a wipe ends the
        session and is published in ``state.wipe``. Returns it, or None."""
        uploader = self.uploader if self._state.online else None
        async with self.engine.paused():
            report = await wipe_if_due(self.store, self.clock.now(), uploader)
            if report is not None:
                self.engine.reload()
        if report is not None:
            await self._end_session(None, wipe=report)
        return report

    # -- actions --------------------------------------------------------------------------

    async def sync_now(self, server_id: str, *, full: bool = True) -> SyncStatus:
        """Upload the outbox (for at most ``INTERACTIVE_DEADLINE`` seconds; what is left
        uploads later), then sync with the server ``server_id`` (a full sync unless told);
        returns the engine's final status. Offline it fails at once, saying why."""
        connectivity = self._state.connectivity
        if connectivity is not None and not connectivity.online:
            return self.engine.not_run(
                f"The device is offline ({offline_reason(connectivity)}): nothing synced", full
            )
        if self.uploader is not None:
            with contextlib.suppress(TimeoutError):
                await within(self.clock, INTERACTIVE_DEADLINE, self.uploader.drain())
        return await self.engine.sync(server_id, full=full)

    async def retry_upload(self) -> None:
        """Put the refused registrations back in the queue and upload."""
        if self.uploader is not None:
            await self.uploader.retry()

    def queued(self) -> None:
        """A registration was committed to the outbox: upload it now."""
        if self.uploader is not None:
            self.uploader.kick()

    async def registrar(self, post: Post) -> Registrar:
        """A registrar for the signed-in session at ``post`` (see
        :meth:`Registrar.for_session`; raises its errors)."""
        assert self.session is not None, "registering needs a session"
        return await Registrar.for_session(
            self.store, self.client, self.session, self.queued, post, lambda: self._state.server_answered_at
        )

    async def book(self) -> Book:
        """Where the Register set-up finds the safety mode and the places: the device store
        when it holds the session's server's data (or the session is offline), else the
        server. Raises ServerUnreachable when the device never synced and is offline."""
        assert self.session is not None, "the register set-up needs a session"
        on_device = await device_data_for(self.store, self.client, self.session)
        return LocalBook(self.store) if on_device is not None else self.client


def offline_reason(connectivity: Connectivity) -> str:
    """The first dependency that is down and why, e.g. ``server down: ...: Connection refused``."""
    for name, dependency in connectivity.dependencies.items():
        if dependency.state is DependencyState.DOWN:
            return f"{name} down: {dependency.reason}"
    return "no answer"


def _answered(connectivity: Connectivity) -> bool:
    """True when the server's health answer came in that round (its API is up)."""
    api = connectivity.dependencies.get("api")
    return api is not None and api.state is DependencyState.UP


def _task(work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """A task running ``work``; a crash is logged, never lost silently."""
    task = asyncio.create_task(work)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("device runtime task failed", exc_info=task.exception())


async def _cancel(tasks: list[asyncio.Task[Any]] | set[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` (except the one running this) and wait until they are done."""
    current = asyncio.current_task()
    doomed = [task for task in tasks if task is not current]
    for task in doomed:
        task.cancel()
    for task in doomed:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
