"""Headless commands: ``muster sync`` keeps a handheld with no screen current, ``muster
register`` registers a card from a script.

They use the same session, engine, uploader and registrar as the app and never raise a
SyncError: a failure becomes a Failed status (or an ``error``) with its reason.
:func:`sync_once` uploads the outbox, then runs one sync (delta when the device has
synced with this server before, else full); :func:`sync_forever` runs the same device
runtime as the app, unattended, and reports every completed run; :func:`register_once`
registers one card through the outbox (offline it signs in against the synced users and
queues).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from sync_core.clock import Clock, SystemClock, wait_for_event_or_sleep, within
from sync_core.device.client import INTERACTIVE_DEADLINE, ServerClient
from sync_core.device.connectivity import VPN_TARGET_ENV, ConnectivityMonitor
from sync_core.device.engine import RETRY_AFTER, SyncEngine
from sync_core.device.registrar import Post, Registrar, Result
from sync_core.device.runtime import DeviceRuntime, DeviceState
from sync_core.device.session import Session, sign_in
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore
from sync_core.device.upload import Uploader
from sync_core.errors import MusterError, ServerUnreachable, SyncError

# The probe round that decides whether ``muster register`` talks to the server: a server
# that answers on the ship's network does so within milliseconds.
REGISTER_PROBE_SECONDS = 1.0


@asynccontextmanager
async def _signed_in(
    server_url: str,
    store: DeviceStore,
    username: str,
    password: str,
    clock: Clock | None,
    transport: httpx.AsyncBaseTransport | None,
    full: bool,
) -> AsyncIterator[tuple[SyncEngine, Session | SyncStatus]]:
    """An engine and the online session, or the Failed status that explains why not."""
    async with ServerClient(server_url, transport=transport) as client:
        engine = SyncEngine(store, client, clock or SystemClock())
        try:
            session = await sign_in(client, store, username, password, synced_wait=None)
        except SyncError as exc:
            yield engine, engine.not_run(str(exc), full)
            return
        if not session.online:
            yield (
                engine,
                engine.not_run(
                    f"Server at {server_url} is unreachable; signed in offline, nothing synced", full
                ),
            )
            return
        yield engine, session


async def sync_once(
    server_url: str,
    store: DeviceStore,
    username: str,
    password: str,
    *,
    full: bool = False,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    watch: Callable[[SyncStatus], None] | None = None,
) -> SyncStatus:
    """Sign ``username`` in at ``server_url`` and sync ``store`` once (``full`` forces a full
    sync); ``watch`` (if given) is called with every status the engine publishes meanwhile
    (e.g. a full sync's progress)."""
    async with _signed_in(server_url, store, username, password, clock, transport, full) as (engine, session):
        if isinstance(session, SyncStatus):
            return session
        if watch is not None:
            engine.subscribe(watch)
        await _uploader(engine, session).drain()
        return await engine.sync(session.server_id or "", full=full)


async def sync_forever(
    server_url: str,
    store: DeviceStore,
    username: str,
    password: str,
    report: Callable[[SyncStatus], None],
    *,
    full: bool = False,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    monitor: ConnectivityMonitor | None = None,
    watch: Callable[[SyncStatus], None] | None = None,
) -> SyncStatus:
    """``muster sync --watch``: the device runtime, unattended, until cancelled.

    Signs in (offline against the synced users while the server does not answer, then with
    the server as soon as it does), uploads and syncs once, then runs as the app does: the
    delta timer (after a failure it retries on the timer's backoff), the uploader, session
    renewal, the reactions to going online, the retention wipe at start and hourly.
    ``report`` gets the status at the end of every sync run, and a Failed status when a
    sign-in cannot start. Returns only when the server refuses the credentials (that
    Failed status); cancel it to stop (the outbox is left intact). ``watch`` (if given) is
    called with every status the engine publishes.

    ``transport`` and ``monitor`` are for tests (default: real probes of ``server_url``).
    """
    clock = clock or SystemClock()
    client = ServerClient(server_url, transport=transport)
    monitor = monitor or ConnectivityMonitor(server_url, os.environ.get(VPN_TARGET_ENV), clock=clock)
    runtime = DeviceRuntime(store, client, monitor, clock, unattended=True)
    runtime.engine.subscribe(_at_each_run_end(report))
    if watch is not None:
        runtime.engine.subscribe(watch)
    online = _went_online(runtime)
    await runtime.start()
    try:
        refused = await _sign_in_until_done(runtime, username, password, report, full, online)
        if refused is not None:
            return refused
        await asyncio.Event().wait()  # the runtime works until this task is cancelled
        raise AssertionError("unreachable")
    finally:
        await runtime.aclose()


def _went_online(runtime: DeviceRuntime) -> asyncio.Event:
    """An event set each time ``runtime`` goes from offline (or unknown) to online."""
    went_online, was_online = asyncio.Event(), [False]

    def published(state: DeviceState) -> None:
        if state.online and not was_online[0]:
            went_online.set()
        was_online[0] = state.online

    runtime.subscribe(published)
    return went_online


async def _sign_in_until_done(
    runtime: DeviceRuntime,
    username: str,
    password: str,
    report: Callable[[SyncStatus], None],
    full: bool,
    online: asyncio.Event,
) -> SyncStatus | None:
    """Sign in and run the first sync; while the server cannot be reached and the device
    has no synced users, report why and try again when the device goes online or after the
    delta timer's failure backoff (``online`` is set on going online). Returns the Failed
    status of refused credentials."""
    url = runtime.client.base_url
    while True:
        try:
            session = (await runtime.sign_in(username, password)).session
        except ServerUnreachable as exc:
            report(runtime.engine.not_run(str(exc), full))
            online.clear()
            await wait_for_event_or_sleep(online, runtime.clock, RETRY_AFTER.total_seconds())
            continue
        except SyncError as exc:
            refused = runtime.engine.not_run(str(exc), full)
            report(refused)
            return refused
        if session.server_id is None:  # runs the sync when online (the runtime's reaction)
            unreachable = f"Server at {url} is unreachable; signed in offline, nothing synced"
            report(runtime.engine.not_run(unreachable, full))
        else:
            await runtime.sync_now(session.server_id, full=full)
        return None


def _at_each_run_end(report: Callable[[SyncStatus], None]) -> Callable[[SyncStatus], None]:
    """A subscriber calling ``report`` once per sync run, with the status it ended with
    (the uploads' statuses published between runs are not runs)."""
    running = False

    def published(status: SyncStatus) -> None:
        nonlocal running
        if running and not status.running:
            report(status)
        running = status.running

    return published


def _uploader(engine: SyncEngine, session: Session) -> Uploader:
    """The uploader of the outbox bound to the session's server, publishing through ``engine``."""
    store = engine.store
    return Uploader(store.outbox, engine.client, engine.clock, session.server_id or "", engine.show_upload)


async def register_once(
    server_url: str,
    store: DeviceStore,
    username: str,
    password: str,
    post: Post,
    card: str,
    *,
    force: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, object]:
    """Register the holder of ``card`` at ``post``'s place; the object ``muster register``
    prints (docs/architecture.md, 'Command line'): ``registration_id``, ``profile_id``, ``result``
    (registered / already registered / refused / unknown card), ``pending_upload`` (this
    server's registrations still waiting) and ``error``.

    It never waits on a frozen server: one probe round (at most ``REGISTER_PROBE_SECONDS``)
    decides first; offline, the synced users sign the crew member in and the registration queues at
    once. Online, sign-in and the upload right after the registration each give up after
    ``INTERACTIVE_DEADLINE`` seconds (the registration is already committed on the device)."""
    report: dict[str, object] = dict.fromkeys(("registration_id", "profile_id", "result", "error"))
    async with (
        ServerClient(server_url, transport=transport) as client,
        ConnectivityMonitor(
            server_url, os.environ.get(VPN_TARGET_ENV), timeout=REGISTER_PROBE_SECONDS, transport=transport
        ) as monitor,
    ):
        engine = SyncEngine(store, client, post.clock)
        online = (await monitor.check()).online
        try:
            session = await sign_in(client, store, username, password, server_answers=online)
            registrar = await Registrar.for_session(store, client, session, lambda: None, post)
            outcome = await registrar.scan(card, force=force)
        except MusterError as exc:
            return report | {"error": str(exc), "pending_upload": await _pending(store)}
        result = Result.REFUSED if outcome.result is Result.ASK else outcome.result
        report |= {
            "registration_id": outcome.registration_id,
            "result": result.value,
            "error": outcome.reason,
        }
        report["profile_id"] = outcome.person.profile_id if outcome.person else None
        if session.online and registrar.on_store:
            with contextlib.suppress(TimeoutError):
                await within(post.clock, INTERACTIVE_DEADLINE, _uploader(engine, session).drain())
    return report | {"pending_upload": await _pending(store)}


async def _pending(store: DeviceStore) -> int:
    point = await asyncio.to_thread(store.sync_point)
    if point is None:
        return 0
    return (await asyncio.to_thread(store.outbox.tally, point.server_id)).pending
