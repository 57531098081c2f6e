"""Headless sign-in + sync for ``muster sync``: a handheld with no screen stays current.

Uses the same session and engine as the app and never raises a SyncError: a failed
sign-in becomes a Failed status with its reason. :func:`sync_once` runs one sync (delta
when the device has synced with this server before, else full); :func:`sync_forever`
keeps the delta timer running and reports every completed run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from sync_core.clock import Clock, SystemClock
from sync_core.device.client import ServerClient
from sync_core.device.engine import SyncEngine
from sync_core.device.session import Session, sign_in
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore
from sync_core.device.timer import DeltaTimer
from sync_core.errors import SyncError
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
            session = await sign_in(client, store, username, password)
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
) -> SyncStatus:
    """Sign ``username`` in at ``server_url`` and sync ``store`` once (``full`` forces a full sync)."""
    async with _signed_in(server_url, store, username, password, clock, transport, full) as (engine, session):
        if isinstance(session, SyncStatus):
            return session
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
) -> SyncStatus:
    """Sync once, then on the delta timer until cancelled, calling ``report`` after each run.

    Returns only when sign-in fails (the Failed status, also reported).
    """
    async with _signed_in(server_url, store, username, password, clock, None, full) as (engine, session):
        if isinstance(session, SyncStatus):
            report(session)
            return session
        engine.subscribe(lambda status: None if status.running else report(status))
        await engine.sync(session.server_id or "", full=full)
        await DeltaTimer(engine, session.server_id or "").run()
    raise AssertionError("the delta timer never returns")
