"""Helpers for the TUI tests: constructed sync statuses with fixed figures, opening the
Synchronization screen on one of them, and waiting for workers to settle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual.pilot import Pilot

from muster_tui.app import MusterApp
from muster_tui.screens.synchronization import SynchronizationScreen
from sync_core.device import DatasetStatus, SyncStatus
from sync_core.protocol import DATASET_LABELS, SyncState

SERVER_URL = "http://ship.example:8000"
SERVER_ID = "snapshot-server"
SYNCED_AT = datetime(2026, 11, 30, 23, 16, 42, tzinfo=UTC)
DELTA_AT = SYNCED_AT + timedelta(minutes=30)
INTERVAL = timedelta(minutes=30)
COUNTS = {
    "users": 12,
    "muster_stations": 8,
    "lifeboats": 18,
    "parameters": 10,
    "reservations": 2400,
    "pictures": 2398,
}
REFUSED = "2 portrait(s) refused"
FAILURE = "Server at http://ship.example:8000 is unreachable: timed out (ReadTimeout)"


def _row(
    key: str, state: SyncState, *, count: int = 0, changes: int = 0, last_updated: datetime | None = None
) -> DatasetStatus:
    return DatasetStatus(
        key=key,
        label=DATASET_LABELS[key],
        status=state,
        count=count,
        changes=changes,
        last_updated=last_updated,
    )


def in_progress_status() -> SyncStatus:
    """A first full sync half way: three datasets fetched, the fourth under way."""
    states = dict.fromkeys(DATASET_LABELS, SyncState.NOT_STARTED)
    states.update(dict.fromkeys(("users", "muster_stations", "lifeboats"), SyncState.SUCCESS))
    states["parameters"] = SyncState.IN_PROGRESS
    rows = {
        key: _row(key, state, changes=COUNTS[key] if state is SyncState.SUCCESS else 0)
        for key, state in states.items()
    }
    return SyncStatus(status=SyncState.IN_PROGRESS, kind="full", datasets=rows)


def succeeded_status() -> SyncStatus:
    """A finished full sync; two portraits were refused (that row Failed, the rest went on);
    the next delta is 30 minutes on."""
    rows = {
        key: _row(key, SyncState.SUCCESS, count=count, changes=count, last_updated=SYNCED_AT)
        for key, count in COUNTS.items()
    }
    rows["pictures"] = rows["pictures"].model_copy(
        update={"status": SyncState.FAILED, "changes": 2398, "failed": 2, "error": REFUSED}
    )
    return SyncStatus(
        status=SyncState.SUCCESS,
        kind="full",
        datasets=rows,
        cursor=4812,
        last_full_sync=SYNCED_AT,
        next_delta_due=SYNCED_AT + INTERVAL,
    )


def failed_status() -> SyncStatus:
    """A first full sync that failed: nothing of it is kept, so every dataset says Failed
    and the device has no data (as the engine reports it)."""
    rows = {key: _row(key, SyncState.FAILED) for key in DATASET_LABELS}
    return SyncStatus(status=SyncState.FAILED, kind="full", datasets=rows, error=FAILURE)


DELTA_CHANGES = {"parameters": 1, "reservations": 110, "pictures": 10}


def after_delta_status() -> SyncStatus:
    """A delta 30 minutes after the full sync: 100 profiles changed, 10 left, 1 parameter."""
    rows = {
        key: _row(
            key,
            SyncState.SUCCESS,
            count=count - 10 * (key in ("reservations", "pictures")),
            changes=DELTA_CHANGES.get(key, 0),
            last_updated=DELTA_AT if key in DELTA_CHANGES else SYNCED_AT,
        )
        for key, count in COUNTS.items()
    }
    return SyncStatus(
        status=SyncState.SUCCESS,
        kind="delta",
        datasets=rows,
        cursor=4950,
        last_full_sync=SYNCED_AT,
        last_delta_sync=DELTA_AT,
        next_delta_due=DELTA_AT + INTERVAL,
    )


def sync_now_in_progress_status() -> SyncStatus:
    """Sync Now after that delta, half way: the device still holds (and shows) its data."""
    done = after_delta_status()
    rows = {
        key: row.model_copy(update={"status": SyncState.NOT_STARTED, "changes": 0})
        for key, row in done.datasets.items()
    }
    for key in ("users", "muster_stations"):
        rows[key] = rows[key].model_copy(update={"status": SyncState.SUCCESS, "changes": COUNTS[key]})
    rows["lifeboats"] = rows["lifeboats"].model_copy(update={"status": SyncState.IN_PROGRESS})
    return done.model_copy(update={"status": SyncState.IN_PROGRESS, "kind": "full", "datasets": rows})


def sync_now_failed_status() -> SyncStatus:
    """Sync Now failed on the lifeboats: nothing of it is kept (every dataset Failed), the
    previous data stays in use; Retry is offered."""
    running = sync_now_in_progress_status()
    rows = {
        key: row.model_copy(update={"status": SyncState.FAILED, "changes": 0})
        for key, row in running.datasets.items()
    }
    return running.model_copy(
        update={
            "status": SyncState.FAILED,
            "datasets": rows,
            "error": FAILURE,
            "next_delta_due": DELTA_AT + timedelta(minutes=41),
        }
    )


STATUSES = {
    "in_progress": in_progress_status,
    "succeeded": succeeded_status,
    "failed": failed_status,
    "after_delta": after_delta_status,
    "sync_now_in_progress": sync_now_in_progress_status,
    "sync_now_failed": sync_now_failed_status,
}


async def show_status(pilot: Pilot[None], status: SyncStatus) -> SynchronizationScreen:
    """Open a Synchronization screen in the running app and show ``status`` on it."""
    app = pilot.app
    assert isinstance(app, MusterApp)
    screen = SynchronizationScreen(app.engine, SERVER_ID)
    await app.push_screen(screen)
    screen.post_message(SynchronizationScreen.StatusChanged(status))
    await pilot.pause()
    return screen


async def settle(pilot: Pilot[None]) -> None:
    """Wait until no worker runs (the delta timer, which runs all session long, aside) and
    what the workers posted has been handled."""
    for _ in range(50):
        busy = [w for w in pilot.app.workers if w.group != "delta-timer" and not w.is_finished]
        if not busy:
            await pilot.pause()
            return
        await pilot.app.workers.wait_for_complete(busy)
        await pilot.pause()
    raise AssertionError("workers kept running")


def offered_actions(screen: SynchronizationScreen) -> dict[str, bool]:
    """The footer's offers on ``screen``: description -> enabled."""
    return {
        active.binding.description: active.enabled
        for active in screen.active_bindings.values()
        if active.binding.show
    }
