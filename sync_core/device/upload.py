"""Uploading the outbox: "Synchronize offline data to server" (the product's words;
docs/architecture.md, 'Every registration is uploaded exactly once').

:class:`Uploader` sends the pending registrations of one server in batches of
``REGISTRATION_BATCH_MAX``. Per item of the server's receipt: applied / already applied
leaves the outbox; a 4xx is refused for good (Failed, with the server's reason; it never
blocks the others); a 5xx, or an item the receipt does not name, stays pending. A failed
request (network, timeout, 5xx, a malformed answer) leaves the whole batch pending. The
HTTP client never retries a POST; the uploader does, after a capped exponential backoff
with jitter (``BACKOFF_FIRST`` doubling to ``BACKOFF_CAP`` seconds, times a random factor in
[0.5, 1]), and at once when :meth:`Uploader.kick` says a registration was queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from sync_core.clock import Clock, wait_for_event_or_sleep
from sync_core.device.client import ServerClient
from sync_core.device.outbox import Outbox
from sync_core.device.status import UploadStatus
from sync_core.errors import ServerRejected, ServerUnreachable, SyncError
from sync_core.protocol import (
    REGISTRATION_BATCH_MAX,
    ItemOutcome,
    Registration,
    RegistrationReceipt,
    SyncState,
)
from sync_core.wording import counted

log = logging.getLogger(__name__)
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 8.0


class Uploader:
    """Uploads ``outbox``'s registrations bound to ``server_id`` through ``client``.

    ``publish`` receives every new :class:`UploadStatus`; ``clock`` times the backoff;
    ``rng`` draws the jitter (seed it in tests). Offline (the server unreachable) the status
    is Not started, as the product specifies; a refused item or a server error makes it Failed.
    """

    def __init__(
        self,
        outbox: Outbox,
        client: ServerClient,
        clock: Clock,
        server_id: str,
        publish: Callable[[UploadStatus], None],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.clock = clock
        self.server_id = server_id
        self._publish = publish
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.failures = 0  # failed requests in a row, for the backoff
        self.status = UploadStatus()

    def kick(self) -> None:
        """A registration was queued (or the device came online): upload now, or right
        after the upload in flight."""
        self._wake.set()

    async def retry(self) -> UploadStatus:
        """Put refused registrations back in the queue and upload (the Retry button)."""
        await asyncio.to_thread(self.outbox.requeue_failed, self.server_id)
        return await self.drain()

    async def run(self) -> None:
        """Upload now, then whenever kicked, and after the backoff while items wait; forever."""
        while True:
            status = await self.drain()
            delay = self.backoff() if status.pending and self.failures else None
            await wait_for_event_or_sleep(self._wake, self.clock, delay)

    def backoff(self) -> float:
        """Seconds to wait before the next try after ``failures`` failed requests."""
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(self.failures - 1, 0))
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def drain(self) -> UploadStatus:
        """Upload every pending registration now, batch after batch, until none is left or
        a request fails; returns the status published last. Never raises SyncError."""
        async with self._lock:
            self._wake.clear()
            self._show(SyncState.IN_PROGRESS)
            error: SyncError | None = None
            while error is None:
                batch = await asyncio.to_thread(self.outbox.pending, self.server_id, REGISTRATION_BATCH_MAX)
                if not batch:
                    break
                error = await self._send(batch)
            self.failures = self.failures + 1 if error else 0
            return await self._finish(error)

    async def _send(self, batch: list[Registration]) -> SyncError | None:
        ids = [item.registration_id for item in batch]
        try:
            receipt = await self.client.post_registrations(batch)
        except SyncError as exc:
            log.warning("upload of %d registrations failed: %s", len(ids), exc)
            await asyncio.to_thread(self.outbox.settle, [], {}, ids, self.clock.now())
            return exc
        sent, refused, retry = _sort(receipt, ids)
        await asyncio.to_thread(self.outbox.settle, sent, refused, retry, self.clock.now())
        if refused:
            log.warning("server refused %d registrations: %s", len(refused), next(iter(refused.values())))
        if retry:
            return ServerRejected(500, f"the server could not store {len(retry)} registrations; retrying")
        return None

    async def _finish(self, error: SyncError | None) -> UploadStatus:
        tally = await asyncio.to_thread(self.outbox.tally, self.server_id)
        reason = str(error) if error else None
        if isinstance(error, ServerUnreachable):
            state = SyncState.NOT_STARTED  # offline: the product's word
        elif error or tally.failed:
            state = SyncState.FAILED
            if reason is None:
                reason = await asyncio.to_thread(self._refusal, tally.failed)
        elif tally.sent:
            state = SyncState.SUCCESS
        else:
            state = SyncState.NOT_STARTED
        return self._show(
            state,
            pending=tally.pending,
            sent=tally.sent,
            failed=tally.failed,
            last_success=tally.last_upload,
            error=reason,
        )

    def _refusal(self, failed: int) -> str:
        _, profile_id, reason = self.outbox.failures(self.server_id, 1)[0]
        return f"The server refused {counted(failed, 'registration')}; latest ({profile_id}): {reason}"

    def _show(self, state: SyncState, **fields: object) -> UploadStatus:
        self.status = self.status.model_copy(update={"status": state, **fields})
        self._publish(self.status)
        return self.status


def _sort(receipt: RegistrationReceipt, ids: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Split a batch by the receipt: sent, refused (id -> reason), to retry (5xx or unnamed)."""
    asked = set(ids)
    sent: list[str] = []
    refused: dict[str, str] = {}
    for result in receipt.results:
        if result.registration_id not in asked:
            continue
        if result.outcome in (ItemOutcome.APPLIED, ItemOutcome.ALREADY_APPLIED):
            sent.append(result.registration_id)
        elif 400 <= result.status < 500:
            refused[result.registration_id] = result.reason or f"refused ({result.status})"
    settled = set(sent) | set(refused)
    return sent, refused, [rid for rid in ids if rid not in settled]
