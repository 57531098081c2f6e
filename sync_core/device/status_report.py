"""``muster status``: probe now and report what the device holds (docs/architecture.md, 'Command line').

The probe uses the server stored at the last sync (``DeviceStore.sync_point().server_url``)
and the VPN probe target from the environment variable ``MUSTER_VPN_TARGET`` (``HOST:PORT``;
unset means ``not configured``), since the store keeps no VPN target yet. One round of
:class:`~sync_core.device.connectivity.ConnectivityMonitor` decides the mode, so the report
ends within the probe timeout (2 s) plus reading the store.
"""

from __future__ import annotations

import httpx

from sync_core.clock import Clock, SystemClock
from sync_core.device.client import ServerClient
from sync_core.device.connectivity import ConnectivityMonitor
from sync_core.device.engine import SyncEngine, stored_upload
from sync_core.device.retention import days_to_wipe
from sync_core.device.status import SyncStatus
from sync_core.device.store import DeviceStore


async def status_report(
    store: DeviceStore,
    vpn_target: str | None = None,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, object]:
    """The object ``muster status --json`` prints, with exactly these keys:

    - ``mode``: ``online`` / ``offline``; ``dependencies``: name -> ``{"state": "up" |
      "down" | "not configured", "reason"}`` (see :mod:`sync_core.device.connectivity`);
      a never-synced store is offline, its server ``not configured`` ("never synced");
    - ``sync``: the stored download status as ``muster sync`` prints it
      (:meth:`SyncStatus.to_cli_json`); ``upload``: its ``{"status", "pending", "sent",
      "failed"}``;
    - ``outbox``: the synced server's registrations ``{"pending", "sent", "failed"}`` (after
      a retention wipe: every kept registration); ``refused``: the newest refused ones,
      ``[{"registration_id", "profile_id", "reason"}]`` with the server's reasons;
    - ``last_used``: the device's last use (ISO 8601, UTC) or null (never, or not since a
      retention wipe); ``days_to_wipe``: days (2 decimals) until the retention wipe is due,
      or null with no last use (:mod:`sync_core.device.retention`; seed, "Offline Data
      Retention Period").

    ``vpn_target`` is ``HOST:PORT`` or None; ``clock`` and ``transport`` are for tests.
    Never raises for an unreachable server.
    """
    clock = clock or SystemClock()
    point = store.sync_point()
    async with ConnectivityMonitor(
        point.server_url if point else None, vpn_target, clock=clock, transport=transport
    ) as monitor:
        connectivity = await monitor.check()
    if point is None:
        sync = SyncStatus(upload=stored_upload(store, None))
    else:
        async with ServerClient(point.server_url, transport=transport) as client:
            sync = SyncEngine(store, client, clock).status
    upload = sync.upload
    last_used, days = store.last_used(), days_to_wipe(store, clock.now())
    return connectivity.to_cli_json() | {
        "sync": sync.to_cli_json(),
        "upload": upload.to_cli_json(),
        "outbox": {"pending": upload.pending, "sent": upload.sent, "failed": upload.failed},
        "refused": [refusal.model_dump() for refusal in upload.refused],
        "last_used": last_used.isoformat() if last_used else None,
        "days_to_wipe": round(days, 2) if days is not None else None,
    }
