"""Times as the screens show them: UTC, to the minute (e.g. ``2026-11-30 23:16 UTC``).

Shown times always come from a :class:`~sync_core.device.SyncStatus`, never from a live
wall clock (no clock on screen: serial links, stable snapshots).
"""

from __future__ import annotations

from datetime import UTC, datetime

NEVER = "never"


def format_utc(moment: datetime | None) -> str:
    """``moment`` in UTC as ``YYYY-MM-DD HH:MM UTC``; :data:`NEVER` for None.

    A naive datetime is taken to be UTC already.
    """
    if moment is None:
        return NEVER
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
