"""Helpers for the TUI tests: constructed sync statuses with fixed figures, opening the
Synchronization screen on one of them, waiting for workers to settle, and a hand-made ship
to open the Register screen on without a server."""

from __future__ import annotations

import contextlib
import hashlib
import random
from datetime import UTC, date, datetime, timedelta

import uuid6
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets._footer import FooterKey
from textual.worker import WorkerCancelled

from fixtures.portraits import portrait
from muster_tui.app import MusterApp
from muster_tui.screens.register import RegisterScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.portrait import stored_pictures
from sync_core.clock import Clock
from sync_core.device import DatasetStatus, DeviceStore, SyncStatus, UploadStatus
from sync_core.device.registrar import LocalBook, Post, Registrar, StationCounts, outbox_recorder
from sync_core.device.status import SyncProgress
from sync_core.muster import AssemblyHandling, Place
from sync_core.protocol import DATASET_LABELS, Registration, RegistrationAction, SafetyMode, SyncState
from tests.sealed import put_rows

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
REFUSED = "2 portraits refused"
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


STAGED = ("users", "muster_stations", "lifeboats")


def _progress(staged: tuple[str, ...]) -> SyncProgress:
    """A full sync's progress once the ``staged`` datasets are fetched (as the engine
    measures it), the time left not yet known."""
    records_total = sum(count for key, count in COUNTS.items() if key != "pictures")
    return SyncProgress(
        records=sum(COUNTS[key] for key in staged),
        records_total=records_total,
        portraits_total=COUNTS["pictures"],
    )


def in_progress_status() -> SyncStatus:
    """A first full sync: three datasets fetched and staged (In progress until the swap,
    counting what the device will hold), the fourth under way, and its progress."""
    rows = {key: _row(key, SyncState.NOT_STARTED) for key in DATASET_LABELS}
    rows.update(
        {key: _row(key, SyncState.IN_PROGRESS, count=COUNTS[key], changes=COUNTS[key]) for key in STAGED}
    )
    rows["parameters"] = _row("parameters", SyncState.IN_PROGRESS)
    return SyncStatus(status=SyncState.IN_PROGRESS, kind="full", datasets=rows, progress=_progress(STAGED))


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
    staged = ("users", "muster_stations")
    for key in staged:
        rows[key] = rows[key].model_copy(update={"status": SyncState.IN_PROGRESS, "changes": COUNTS[key]})
    rows["lifeboats"] = rows["lifeboats"].model_copy(update={"status": SyncState.IN_PROGRESS})
    progress = _progress(staged).model_copy(update={"seconds_left": 42.0})
    update = {"status": SyncState.IN_PROGRESS, "kind": "full", "datasets": rows, "progress": progress}
    return done.model_copy(update=update)


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
            "progress": None,
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


# Workers that run all session long: the delta timer, the uploader and the connectivity probe.
SESSION_WORKERS = frozenset({"delta-timer", "upload", "probe"})


async def settle(pilot: Pilot[None]) -> None:
    """Wait until no worker runs (those of :data:`SESSION_WORKERS` aside), nor any chore of
    the device runtime, and what they posted has been handled. A worker cancelled by a
    newer one (exclusive) counts as done."""
    for _ in range(50):
        busy = [w for w in pilot.app.workers if w.group not in SESSION_WORKERS and not w.is_finished]
        if not busy:
            runtime = getattr(pilot.app, "runtime", None)
            if runtime is not None and runtime.busy:
                await runtime.idle()
                continue
            await pilot.pause()
            return
        with contextlib.suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete(busy)
        await pilot.pause()
    raise AssertionError("workers kept running")


def footer_fits(screen: Screen[None]) -> list[str]:
    """The footer's labels on ``screen``, asserting each is wholly on screen (none cut)."""
    keys = list(screen.query(FooterKey))
    assert keys and all(key.region.right <= screen.size.width and key.region.width for key in keys)
    return [key.description for key in keys]


def offered_actions(screen: Screen[None]) -> dict[str, bool]:
    """The footer's offers on ``screen``: description -> enabled."""
    return {
        active.binding.description: active.enabled
        for active in screen.active_bindings.values()
        if active.binding.show
    }


UPLOADS = {
    "offline": UploadStatus(
        status=SyncState.NOT_STARTED,
        pending=5,
        sent=12,
        last_success=DELTA_AT,
        error="Server at http://ship.example:8000 is unreachable: connection refused",
    ),
    "refused": UploadStatus(
        status=SyncState.FAILED,
        pending=0,
        sent=17,
        failed=1,
        last_success=DELTA_AT,
        error="The server refused 1 registration; latest (P0000042): unknown profile 'P0000042'",
    ),
}


def upload_status(name: str) -> SyncStatus:
    """After the delta, with the outbox in the state :data:`UPLOADS` names."""
    return after_delta_status().model_copy(update={"upload": UPLOADS[name]})


# -- a hand-made ship for the Register screen (no server) ---------------------------------

STATIONS = [("A", "Grand Theater", "Muster", 4, 60), ("B", "Ice Arena", "Muster", 4, 60)]
LIFEBOATS = [
    ("LB01", "Lifeboat 1, starboard side, deck 5", "LB", 60, "Starboard", 1),
    ("LB02", "Lifeboat 2, port side, deck 5", "LB", 60, "Port", 1),
]
HOSTILE_NAME = "Ro\x1b[31mse\x1b]0;pwned\x07"
# profile_id, type, first, last, birth, class, cabin, card, station, lifeboat, status, needs, picture
PEOPLE = [
    ("P1", "Guest", "Mauro", "Dueñas", date(1980, 5, 17), "Balcony", "10260", "2019567205", "A", "LB01",
     "Onboard", None, "good"),
    ("P2", "Guest", "Siobhán", "O'Brien", date(1957, 12, 24), "Suite", "13200", "2457579041", "B", "LB02",
     "Onboard", "Wheelchair user, visually impaired: guide her to the lifeboat", "good"),
    ("P3", "Guest", "[bold]x[/]", "Markup", date(1990, 1, 1), "Interior", "13308", "9156195487", "A", "LB01",
     "Onboard", None, "corrupt"),
    ("P4", "Guest", "Rich", "[/x]", date(2015, 6, 30), "Interior", "12116", "1421047516", "A", "LB01",
     "Onboard", "Deaf", None),
    ("P5", "Visitor", HOSTILE_NAME, "Escape", None, "Visitor", None, "5555000011", "A", "LB01",
     "Onboard", None, None),
    ("P6", "Crew", "Ánh", "Nguyễn Thị", date(1994, 3, 2), "Crew", "6278", "3450595828", "A", "LB01",
     "Onboard", None, None),
    ("P7", "Guest", "翔太", "山田", date(1971, 8, 9), "Balcony", "11470", "6235805835", "B", "LB02",
     "Onboard", None, None),
    ("P8", "Guest", "Léo", "Ashore", date(1985, 2, 2), "Balcony", "9320", "8345216900", "A", "LB01",
     "Ashore", None, None),
]  # fmt: skip
CARDS = {row[0]: row[7] for row in PEOPLE}
STATION_A = Place("A", "Grand Theater")
# Registered on this device before the screen opens: P6 at A, P7 at B.
EARLIER = [("P6", "A", SYNCED_AT - timedelta(minutes=11)), ("P7", "B", SYNCED_AT - timedelta(minutes=6))]


def _jpeg(kind: str | None, profile_id: str) -> bytes | None:
    if kind == "good":
        return portrait(random.Random(profile_id), profile_id, uniform=False)
    return b"\xff\xd8 not a jpeg" if kind == "corrupt" else None


def fill_register_ship(store: DeviceStore, *, handling: int = 2) -> None:
    """Put the hand-made ship in ``store`` (stations, lifeboats, parameters with
    ``assembly_handling_mode`` = ``handling``, :data:`PEOPLE` with two portraits and a
    corrupt one) and the registrations of :data:`EARLIER`."""
    parameters = [("safety_mode", "GENASS", "str"), ("assembly_handling_mode", str(handling), "int"),
                  ("default_muster_station", "A", "str")]  # fmt: skip
    with store.db.cursor() as cur:
        cur.executemany("INSERT INTO muster_stations VALUES (?, ?, ?, ?, ?)", STATIONS)
        cur.executemany("INSERT INTO lifeboats VALUES (?, ?, ?, ?, ?, ?)", LIFEBOATS)
        cur.executemany("INSERT INTO parameters VALUES (?, ?, ?)", parameters)
    store.unlock(bytes(32))  # as a sign-in would
    profiles, pictures = [], []
    for pid, kind, first, last, birth, pax, cabin, card, station, boat, status, needs, picture in PEOPLE:
        jpeg = _jpeg(picture, pid)
        sha = hashlib.sha256(jpeg).hexdigest() if jpeg else None
        profiles.append(
            {"profile_id": pid, "profile_type": kind, "first_name": first, "last_name": last,
             "birth_date": birth, "pax_class": pax, "cabin": cabin, "board_card_number": card,
             "muster_station": station, "lifeboat": boat, "movement_status": status,
             "special_needs": needs, "picture_sha256": sha}
        )  # fmt: skip
        if jpeg:
            pictures.append({"sha256": sha, "profile_id": pid, "jpeg": jpeg})
    put_rows(store, "reservations", profiles)
    put_rows(store, "pictures", pictures)
    for profile_id, station, at in EARLIER:
        store.outbox.add(
            Registration(
                registration_id=str(uuid6.uuid7()),
                profile_id=profile_id,
                action=RegistrationAction.REGISTER,
                safety_mode=SafetyMode.GENASS,
                muster_station=station,
                registered_at=at,
                username="demo",
                device_id=store.device_id,
            ),
            SERVER_ID,
        )


async def registrar_on(
    store: DeviceStore, clock: Clock, mode: SafetyMode, place: str, *, live: bool
) -> Registrar:
    """A registrar over ``store`` (as :meth:`Registrar.on_device` builds it) stamping
    registrations in UTC on ``clock``; its counts are this device's own, said to be
    ``live`` (as the server answers them when it holds only this device's registrations)
    or not."""
    book = LocalBook(store)

    async def tally(mode: SafetyMode, place: str, limit: int) -> StationCounts:
        return StationCounts(await book.counts(mode, place, limit), live=live)

    handling = AssemblyHandling(int(await book.parameter("assembly_handling_mode") or 2))
    post = Post("demo", mode, place, clock, UTC)
    record = outbox_recorder(store, SERVER_ID, lambda: None)
    return Registrar(book, record, tally, post, store.device_id, handling)


async def open_register(
    pilot: Pilot[None],
    mode: SafetyMode = SafetyMode.GENASS,
    place: Place = STATION_A,
    *,
    live: bool = True,
    portraits: bool = True,
) -> RegisterScreen:
    """Open the Register screen of the running app over its store (filled with
    :func:`fill_register_ship`), with ``portraits`` or without, and wait for its counts."""
    app = pilot.app
    assert isinstance(app, MusterApp)
    registrar = await registrar_on(app.store, app.engine.clock, mode, place.code, live=live)
    pictures = stored_pictures(app.store) if portraits else None
    screen = RegisterScreen(registrar, place, app.engine, pictures)
    await app.push_screen(screen)
    await settle(pilot)
    return screen
