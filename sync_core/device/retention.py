"""The retention wipe: a device unused for ``retention_days`` clears its data.

Seed, "Offline Data Retention Period": the application clears its data from a device that
stays unused for ten consecutive days (the threshold), and the count restarts at 0 when a
user signs in. Here the threshold is the general parameter ``retention_days`` (default
10), read from the synced data before the wipe clears it; the count runs from the
device's last use (:meth:`DeviceStore.touch`: every successful sign-in, and the app on
activity), on the device clock.

The wipe first tries to upload the outbox when it is given an uploader (online), then clears
everything but the unsynced registrations, in one transaction (docs/architecture.md, 'Nothing
unsynced is lost silently'; :meth:`DeviceStore.wipe`). Kept registrations stay bound to their user
and server and upload from the next online sign-in at that server. With no sync point left, that
sign-in runs a full sync.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync_core.device.status import UploadStatus
from sync_core.device.store import DeviceStore
from sync_core.device.upload import Uploader

log = logging.getLogger(__name__)
RETENTION_DAYS = "retention_days"
DEFAULT_RETENTION_DAYS = 10


@dataclass(frozen=True)
class WipeReport:
    """What a retention wipe did.

    ``kept``: unsynced registrations (pending or refused) kept for upload; ``removed``:
    registrations already uploaded, cleared with the data; ``upload``: the status of the
    upload tried first, None when there was no uploader (offline).
    """

    kept: int
    removed: int
    upload: UploadStatus | None


def days_to_wipe(store: DeviceStore, now: datetime) -> float | None:
    """Days (fractional, >= 0) until the device counts as unused for ``retention_days``;
    None when it has not been used since it was created or wiped (nothing to count from)."""
    last_used = store.last_used()
    if last_used is None:
        return None
    threshold = timedelta(days=store.whole_parameter(RETENTION_DAYS, DEFAULT_RETENTION_DAYS))
    return max((last_used + threshold - now) / timedelta(days=1), 0.0)


def due(store: DeviceStore, now: datetime) -> bool:
    """True when the device has been unused for ``retention_days`` or more at ``now``."""
    return days_to_wipe(store, now) == 0  # None (not used since created or wiped) is not due


async def wipe(store: DeviceStore, uploader: Uploader | None = None) -> WipeReport:
    """Upload the outbox through ``uploader`` when given (its failure is no error: the
    registrations are kept), then clear the device's data in one transaction.

    Raises ``duckdb.Error`` when the store cannot be written; then nothing is cleared.
    """
    upload = await uploader.drain() if uploader is not None else None
    kept, removed = await asyncio.to_thread(store.wipe)
    log.info("retention wipe: device data cleared; %d registrations kept for upload", kept)
    return WipeReport(kept=kept, removed=removed, upload=upload)


async def wipe_if_due(
    store: DeviceStore, now: datetime, uploader: Uploader | None = None
) -> WipeReport | None:
    """:func:`wipe` when :func:`due` at ``now``, else None (nothing touched)."""
    if not await asyncio.to_thread(due, store, now):
        return None
    return await wipe(store, uploader)
