"""A headless sign-in + sync for ``muster sync``: a handheld with no screen stays current.

Uses the same session and engine as the app; returns the final :class:`SyncStatus` and
never raises a SyncError: a failed sign-in becomes a Failed status with its reason.
"""

from __future__ import annotations

import httpx

from sync_core.clock import Clock, SystemClock
from sync_core.device.client import ServerClient
from sync_core.device.engine import SyncEngine
from sync_core.device.session import sign_in
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore
from sync_core.errors import SyncError
from sync_core.protocol import SyncState


async def sync_once(
    server_url: str,
    store: DeviceStore,
    username: str,
    password: str,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SyncStatus:
    """Sign ``username`` in at ``server_url`` and run a full sync of ``store``."""
    async with ServerClient(server_url, transport=transport) as client:
        engine = SyncEngine(store, client, clock or SystemClock())
        try:
            session = await sign_in(client, store, username, password)
        except SyncError as exc:
            return engine.status.model_copy(update={"status": SyncState.FAILED, "kind": "full", "error": str(exc)})
        if not session.online:
            reason = f"Server at {server_url} is unreachable; signed in offline, nothing synced"
            return engine.status.model_copy(update={"status": SyncState.FAILED, "kind": "full", "error": reason})
        return await engine.full_sync(session.server_id or "")
