"""Measuring a full sync's progress: items fetched against the totals, and the time left.

Records (every dataset but the portraits) and portraits are counted apart, each with its
own rate: a record costs microseconds, a portrait a round trip's share and a few kilobytes,
so one rate for both would be far off. The time left is the records still to fetch at the
records' rate plus the portraits still to fetch at the portraits' rate, measured from when
each kind started; unknown (None) while a kind still to fetch has no rate yet.
"""

from __future__ import annotations

from collections.abc import Callable

from sync_core.device.status import SyncProgress


class FullSyncMeter:
    """Counts what a full sync fetched; ``monotonic`` gives seconds (the engine's clock).

    ``records_total`` and ``portraits_total`` come from the snapshot manifest; the
    portraits' total is narrowed by :meth:`portraits_to_fetch` once the device knows which
    it holds.
    """

    def __init__(self, monotonic: Callable[[], float], records_total: int, portraits_total: int) -> None:
        self._monotonic = monotonic
        self._records_started = monotonic()
        self._portraits_started: float | None = None
        self._progress = SyncProgress(records_total=records_total, portraits_total=portraits_total)

    def records_fetched(self, count: int) -> SyncProgress:
        """``count`` more records are staged; the progress now."""
        return self._update(records=self._progress.records + count)

    def portraits_to_fetch(self, count: int) -> SyncProgress:
        """The device lacks ``count`` of the snapshot's portraits: those are fetched now."""
        self._portraits_started = self._monotonic()
        return self._update(portraits_total=count)

    def portraits_fetched(self, count: int) -> SyncProgress:
        """``count`` more portraits arrived (refused ones included: they are done with)."""
        return self._update(portraits=self._progress.portraits + count)

    def _update(self, **figures: int) -> SyncProgress:
        progress = self._progress.model_copy(update=figures)
        self._progress = progress.model_copy(update={"seconds_left": self._seconds_left(progress)})
        return self._progress

    def _seconds_left(self, progress: SyncProgress) -> float | None:
        now = self._monotonic()
        left = 0.0
        records_left = progress.records_total - progress.records
        if records_left > 0:
            if not progress.records:
                return None
            left += records_left * (now - self._records_started) / progress.records
        portraits_left = progress.portraits_total - progress.portraits
        if portraits_left > 0:
            if not progress.portraits or self._portraits_started is None:
                return None
            left += portraits_left * (now - self._portraits_started) / progress.portraits
        return left
