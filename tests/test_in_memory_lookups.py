"""The people and standings held in memory answer exactly as the SQL of sync_core.muster does
on the same data in clear (the device store keeps names sealed; the SQL runs on an opened copy):
after a full sync, after a delta sync that renames a profile (to a hostile name) and moves a
card, the station counts, and for standings after registrations, unregistrations, a device
clock that went back, an upload and a retention wipe.

Against the real server (tests/conftest.py: the `small` ship, seed 7) and a real device file.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from sync_core import muster
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.people import People
from sync_core.device.registrar import LocalBook, Post, Registrar, Result
from sync_core.device.retention import wipe
from sync_core.device.session import sign_in
from sync_core.device.standings import Standings
from sync_core.device.upload import Uploader
from sync_core.protocol import RecordChange, SafetyMode, SyncState
from sync_core.server.process import ServerProcess

from .sealed import opened_rows

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
HOSTILE = "Zz[bold]Ö'Brien\x1b[2J"
TERMS = ["a", "M", "1", "9", "o'", "[b", "[bold]", "du", "due", "ñ", "Ö", " sm ", "zz", "0000", "x", "山",
         "duenas", "DUEÑ", "nguyen thi", "-", "a b", "b a"]  # fmt: skip


@pytest.fixture
def store(device_store_path: Path) -> Iterator[DeviceStore]:
    store = DeviceStore(device_store_path)
    yield store
    store.close()


@pytest.fixture
async def engine(own_server: ServerProcess, store: DeviceStore) -> AsyncIterator[SyncEngine]:
    """A device signed in with its own server, after a full sync."""
    async with ServerClient(own_server.url) as client:
        await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, FrozenClock(NOW))
        assert (await engine.sync(own_server.server_id)).status is SyncState.SUCCESS
        yield engine


def in_clear(store: DeviceStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the store's reservations opened, and its registrations."""
    con = duckdb.connect()
    reservations = pa.Table.from_pylist(opened_rows(store, "reservations"))  # noqa: F841 (read by name)
    con.execute("CREATE TABLE reservations AS SELECT * FROM reservations")
    with store.db.cursor() as cur:
        registrations = cur.sql("SELECT * FROM registrations").to_arrow_table()  # noqa: F841
    con.execute("CREATE TABLE registrations AS SELECT * FROM registrations")
    return con


def terms_of(store: DeviceStore) -> list[str]:
    """:data:`TERMS`, prefixes of every kind of search field, and full names in either
    order, in capitals, from the data."""
    fields = ("first_name", "last_name", "cabin", "manning_number", "booking_number", "board_card_number")
    rows = [[row[name] for name in fields] for row in opened_rows(store, "reservations")[:12]]
    prefixes = [value[:length] for row in rows for value in row if value for length in (1, 2, 4)]
    names = [f"{first} {last[:3]}".upper() for first, last, *_ in rows] + [
        f"{last} {first}" for first, last, *_ in rows
    ]
    return TERMS + prefixes + names


def assert_people_answer_as_sql(store: DeviceStore) -> People:
    """The store's loaded People answers every card and search as the SQL does; returns it."""
    people = store.view(People).get().load()
    with in_clear(store) as cur:
        cards = [row[0] for row in cur.execute("SELECT board_card_number FROM reservations").fetchall()]
        for card in [*cards, "0000000000", cards[0].lower() + "x"]:
            assert people.find_card(card) == muster.find_card(cur, card), card
        for term in terms_of(store):
            for limit in (1, 500):
                assert people.search(term, limit) == muster.search(cur, term, limit), (term, limit)
    return people


async def test_people_answer_as_the_sql_before_and_after_a_delta_sync(
    own_server: ServerProcess, store: DeviceStore, engine: SyncEngine
) -> None:
    before = assert_people_answer_as_sql(store)
    first = opened_rows(store, "reservations")[0]
    profile_id, card = first["profile_id"], first["board_card_number"]
    async with ServerClient(own_server.url) as office:
        await office.sign_in("office", "office")
        fields = {"last_name": HOSTILE, "first_name": "[/]", "board_card_number": "77AB0001"}
        await office.post_changes([RecordChange(key="reservations", id=profile_id, op="set", fields=fields)])
    assert (await engine.delta_sync()).status is SyncState.SUCCESS

    after = store.view(People).get()
    assert after is not before and not after.loaded  # the delta's write dropped the old one
    assert_people_answer_as_sql(store)
    moved = after.find_card("77AB0001")
    assert moved is not None and (moved.profile_id, moved.last_name) == (profile_id, HOSTILE)
    assert after.find_card(card) is None
    assert [person.profile_id for person in after.search("zz[bold]ö'b", 5)] == [profile_id]
    assert [person.profile_id for person in after.search("ZZ[BOLD]O' [/]", 5)] == [profile_id]


async def test_local_book_answers_the_same_before_and_after_loading(
    store: DeviceStore, engine: SyncEngine
) -> None:
    book = LocalBook(store)
    assert book.search_now("a", 20) is None  # not loaded: the search loads the people first
    card = opened_rows(store, "reservations")[0]["board_card_number"]
    with in_clear(store) as cur:
        expected = muster.find_card(cur, card), muster.search(cur, "a", 20)
    assert (await book.find_card(card), await book.search("a", 20)) == expected
    await book.load(SafetyMode.GENASS)
    assert book.search_now("a", 20) == expected[1]
    assert (await book.find_card(card), await book.search("a", 20)) == expected


Answers = list[muster.Standing | None]


async def test_loading_the_people_leaves_them_out_of_later_collections(
    engine: SyncEngine, store: DeviceStore
) -> None:
    people = store.view(People).get()
    assert any(obj is people for obj in gc.get_objects())
    people.load()
    assert not any(obj is people for obj in gc.get_objects())  # frozen: scans do not walk it


def sql_standings(store: DeviceStore, profile_ids: list[str], mode: SafetyMode) -> Answers:
    with store.db.cursor() as cur:
        return [muster.standing(cur, profile_id, mode) for profile_id in profile_ids]


def view_standings(store: DeviceStore, profile_ids: list[str], mode: SafetyMode) -> Answers:
    view = store.view(Standings).get()
    return [view.standing(profile_id, mode) for profile_id in profile_ids]


async def test_standings_stay_exact_through_registrations_an_upload_and_a_wipe(
    own_server: ServerProcess, store: DeviceStore, engine: SyncEngine, ship_dir: Path
) -> None:
    people = duckdb.sql(
        f"SELECT board_card_number, profile_id FROM '{ship_dir}/reservations.parquet' "
        "WHERE movement_status = 'Onboard' AND muster_station = 'A' ORDER BY profile_id LIMIT 4"
    ).fetchall()
    cards, ids = [row[0] for row in people], [row[1] for row in people]

    async def registrar_at(place: str, at: datetime) -> Registrar:
        post = Post("demo", SafetyMode.GENASS, place, FrozenClock(at), UTC)
        return await Registrar.on_device(store, None, own_server.server_id, lambda: None, post)

    registrar = await registrar_at("A", NOW)
    await registrar.load()  # the view reads general assembly now; later events are noted
    for card in cards:
        assert (await registrar.scan(card)).result is Result.REGISTERED
    assert (await registrar.scan(cards[0])).result is Result.ALREADY_REGISTERED
    second = await registrar.book.find_card(cards[1])
    assert second is not None
    assert (await registrar.unregister(second)).result is Result.UNREGISTERED
    behind = await registrar_at("B", NOW - timedelta(hours=1))  # the device clock went back
    assert (await behind.scan(cards[2], force=True)).result is Result.REGISTERED
    ahead = await registrar_at("B", NOW + timedelta(minutes=5))
    assert (await ahead.scan(cards[3], force=True)).result is Result.REGISTERED
    assert view_standings(store, ids, SafetyMode.GENASS) == sql_standings(store, ids, SafetyMode.GENASS)
    places = [found.place if found else None for found in view_standings(store, ids, SafetyMode.GENASS)]
    assert places == ["A", None, "A", "B"]  # the event stamped an hour back is not the latest
    assert view_standings(store, ids, SafetyMode.EMERCY) == [None] * 4  # read on first use

    book = LocalBook(store)
    for limit in (2, 500):
        with in_clear(store) as cur:
            assert await book.counts(SafetyMode.GENASS, "A", limit) == muster.counts(
                cur, SafetyMode.GENASS, "A", limit
            )

    uploader = Uploader(store.outbox, engine.client, engine.clock, own_server.server_id, lambda _: None)
    assert (await uploader.drain()).sent == 7
    assert view_standings(store, ids, SafetyMode.GENASS) == sql_standings(store, ids, SafetyMode.GENASS)

    before = store.view(Standings).get()
    await wipe(store)  # uploaded registrations go, and so does the view
    assert store.view(Standings).get() is not before
    assert view_standings(store, ids, SafetyMode.GENASS) == sql_standings(store, ids, SafetyMode.GENASS)
    assert view_standings(store, ids, SafetyMode.GENASS) == [None] * 4
