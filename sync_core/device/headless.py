"""Headless commands: ``muster sync`` keeps a handheld with no screen current, ``muster
register`` registers a card from a script.

They use the same session, engine, uploader and registrar as the app and never raise a
SyncError: a failure becomes a Failed status (or an ``error``) with its reason.
:func:`sync_once` uploads the outbox, then runs one sync (delta when the device has
synced with this server before, else full); :func:`sync_forever` keeps the delta timer
and the uploader running and reports every completed run; :func:`register_once`
registers one card through the outbox (offline it signs in against the synced users and
queues).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from sync_core.clock import Clock, SystemClock
from sync_core.device.client import ServerClient
from sync_core.device.engine import SyncEngine
from sync_core.device.registrar import Post, Registrar, Result
from sync_core.device.session import Session, sign_in
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore
from sync_core.device.timer import DeltaTimer
from sync_core.device.upload import Uploader
from sync_core.errors import MusterError, SyncError
from sync_core.protocol import SyncState


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
            yield engine, _failed(engine, str(exc), full)
            return
        if not session.online:
            yield (
                engine,
                _failed(
                    engine, f"Server at {server_url} is unreachable; signed in offline, nothing synced", full
                ),
            )
            return
        yield engine, session


def _failed(engine: SyncEngine, reason: str, full: bool) -> SyncStatus:
    """The status of a run that could not start: Failed, no dataset touched, ``kind`` the
    sync that would have run."""
    status = engine.status
    datasets = {
        key: row.model_copy(update={"status": SyncState.NOT_STARTED, "changes": 0})
        for key, row in status.datasets.items()
    }
    kind = "full" if full or status.cursor is None else "delta"
    return status.model_copy(
        update={"status": SyncState.FAILED, "kind": kind, "datasets": datasets, "error": reason}
    )


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
    watch: Callable[[SyncStatus], None] | None = None,
) -> SyncStatus:
    """Sync once, then on the delta timer until cancelled, calling ``report`` after each run
    and ``watch`` (if given) with every status published.

    Returns only when sign-in fails (the Failed status, also reported).
    """
    async with _signed_in(server_url, store, username, password, clock, None, full) as (engine, session):
        if isinstance(session, SyncStatus):
            report(session)
            return session
        if watch is not None:
            engine.subscribe(watch)
        uploader = _uploader(engine, session)
        await uploader.drain()
        engine.subscribe(_at_each_run_end(report))
        await engine.sync(session.server_id or "", full=full)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(uploader.run())
            tasks.create_task(DeltaTimer(engine, session.server_id or "").run())
    raise AssertionError("the delta timer never returns")


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
    server's registrations still waiting) and ``error``. Online, the outbox is uploaded
    once right after."""
    report: dict[str, object] = dict.fromkeys(("registration_id", "profile_id", "result", "error"))
    async with ServerClient(server_url, transport=transport) as client:
        engine = SyncEngine(store, client, post.clock)
        try:
            session = await sign_in(client, store, username, password)
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
            await _uploader(engine, session).drain()
    return report | {"pending_upload": await _pending(store)}


async def _pending(store: DeviceStore) -> int:
    point = await asyncio.to_thread(store.sync_point)
    if point is None:
        return 0
    return (await asyncio.to_thread(store.outbox.tally, point.server_id)).pending
