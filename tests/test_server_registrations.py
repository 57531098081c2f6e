"""Registrations and muster lookups on the real Mustering server, through the real client.

Uploads are answered item by item and a replay changes nothing (docs/architecture.md, 'Every
registration is uploaded exactly once', 'Bad input fails alone'). Tests that post share one server
of this module's own and keep to their own people, modes and stations; the one that opens the
server's file after stopping it has its own.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import uuid6

from fixtures.postgres import read_store
from sync_core import muster
from sync_core.device.client import ServerClient
from sync_core.errors import BadCard, MalformedResponse, ServerRejected, ServerUnreachable
from sync_core.protocol import (
    API_PREFIX,
    REGISTRATION_BATCH_MAX,
    ItemOutcome,
    RecordChange,
    Registration,
    RegistrationAction,
    SafetyMode,
)
from sync_core.server.process import ServerProcess
from sync_core.server.registrations import RegistrationLog
from sync_core.server.store import ServerStore

from .conftest import start_server
from .test_group_commit import WAIT, wait_for_waiting

ON_BOTH_ENGINES = True

SHIP_TIME = timezone(timedelta(hours=-4))
AT = datetime(2025, 6, 1, 9, 30, tzinfo=SHIP_TIME)
HOSTILE = "[bold red]boom[/] \x1b[2J\x1b]0;pwned\x07 ☠ \u202e"


@pytest.fixture(scope="module")
def server(
    ship_dir: Path, tmp_path_factory: pytest.TempPathFactory, new_server_db: Any
) -> Iterator[ServerProcess]:
    """This module's own server: its tests post registrations, each to people of its own."""
    where = tmp_path_factory.mktemp("registrations")
    server = start_server(ship_dir, where, new_server_db(where))
    yield server
    server.stop()


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[ServerClient]:
    async with ServerClient(server.url) as client:
        await client.sign_in("demo", "demo")
        yield client


def registration(
    profile_id: str,
    place: str,
    mode: SafetyMode = SafetyMode.GENASS,
    action: RegistrationAction = RegistrationAction.REGISTER,
    at: datetime = AT,
    username: str = "demo",
) -> Registration:
    where = {"lifeboat": place} if mode.by_lifeboat else {"muster_station": place}
    return Registration(
        registration_id=str(uuid6.uuid7()),
        profile_id=profile_id,
        action=action,
        safety_mode=mode,
        registered_at=at,
        username=username,
        device_id="test-device",
        **where,
    )


def raw(reg: Registration, **changes: Any) -> dict[str, Any]:
    return {**reg.model_dump(mode="json"), **changes}


def post_raw(server: ServerProcess, items: list[Any], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"registrations": items}
    return httpx.post(f"{server.url}{API_PREFIX}/registrations", json=body, headers=headers, timeout=10)


def card_of(ship_dir: Path, profile_id: str) -> str:
    sql = f"SELECT board_card_number FROM '{ship_dir}/reservations.parquet' WHERE profile_id = ?"
    return duckdb.execute(sql, [profile_id]).fetchall()[0][0]


async def test_a_batch_is_applied_once_and_a_replay_changes_nothing(own_server: ServerProcess) -> None:
    batch = [registration(f"P000000{n}", "B") for n in (1, 2)] + [
        registration("P0000003", "LB01", SafetyMode.ASHSHP)
    ]
    async with ServerClient(own_server.url) as client:
        await client.sign_in("demo", "demo")
        first = await client.post_registrations(batch)
        replay = await client.post_registrations(batch)
    ids = [reg.registration_id for reg in batch]
    assert [(r.registration_id, r.outcome, r.status) for r in first.results] == [
        (id_, ItemOutcome.APPLIED, 200) for id_ in ids
    ]
    assert [(r.registration_id, r.outcome, r.status) for r in replay.results] == [
        (id_, ItemOutcome.ALREADY_APPLIED, 200) for id_ in ids
    ]
    own_server.stop()
    rows = read_store(
        own_server.db,
        "SELECT registration_id, registered_at, registered_utc, uploaded_by, received_at IS NOT NULL "
        "FROM registrations ORDER BY registration_id",
    )
    assert [row[0] for row in rows] == sorted(ids)
    assert {row[1:] for row in rows} == {
        ("2025-06-01T09:30:00-04:00", datetime(2025, 6, 1, 13, 30), "demo", True)
    }


def test_uploads_arriving_together_go_in_one_write_and_an_id_both_sent_is_applied_once(
    server_store: ServerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    first_started, release = threading.Event(), threading.Event()
    real = server_store.log_write

    @contextmanager
    def held() -> Iterator[Any]:  # the first write waits for ``release``
        writes.append(1)
        if len(writes) == 1:
            first_started.set()
            assert release.wait(WAIT)
        with real() as cur:
            yield cur

    monkeypatch.setattr(server_store, "log_write", held)
    log = RegistrationLog(server_store)
    r1, r2, r3, r4 = (registration(f"P000000{n}", "B") for n in (1, 2, 3, 4))
    with ThreadPoolExecutor(3) as threads:
        first = threads.submit(log.apply, [raw(r1)], "demo", AT)
        assert first_started.wait(WAIT)
        second = threads.submit(log.apply, [raw(r2), raw(r3)], "demo", AT)
        wait_for_waiting(log.commits, 1)
        third = threads.submit(log.apply, [raw(r3), raw(r4)], "office", AT)
        wait_for_waiting(log.commits, 2)
        release.set()
        outcomes = [[item.outcome for item in done.result(WAIT).results] for done in (first, second, third)]
    assert outcomes == [
        [ItemOutcome.APPLIED],
        [ItemOutcome.APPLIED, ItemOutcome.APPLIED],
        [ItemOutcome.ALREADY_APPLIED, ItemOutcome.APPLIED],
    ]
    assert len(writes) == 2  # the second and third uploads went in one transaction
    with server_store.cursor() as cur:
        held_rows = cur.execute("SELECT registration_id, uploaded_by FROM registrations").fetchall()
    assert sorted(held_rows) == sorted(
        [
            (r1.registration_id, "demo"),
            (r2.registration_id, "demo"),
            (r3.registration_id, "demo"),
            (r4.registration_id, "office"),
        ]
    )  # fmt: skip  (the store is this test's own: these are all its registrations)


def test_a_mixed_batch_is_answered_item_by_item(server: ServerProcess) -> None:
    token = httpx.post(
        f"{server.url}{API_PREFIX}/sign-in", json={"username": "demo", "password": "demo"}, timeout=10
    ).json()["token"]
    good = registration("P0000020", "C")
    malformed = raw(registration("P0000021", "C"), action="jump")
    station_in_abandon_ship = raw(registration("P0000023", "LB01", SafetyMode.ASHSHP), muster_station="C")
    huge = raw(registration("P0000024", "C"), username="x" * 100_000)
    items = [raw(good), malformed, station_in_abandon_ship, huge]
    items += [42, {}, {"registration_id": "y" * 10_000}, raw(good)]  # nameless items, then a repeat
    answer = post_raw(server, items, token)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [item["registration_id"] for item in results] == [
        good.registration_id,
        malformed["registration_id"],
        station_in_abandon_ship["registration_id"],
        huge["registration_id"],
        good.registration_id,
    ]
    outcomes = [(item["outcome"], item["status"]) for item in results]
    assert outcomes == [("applied", 200)] + [("rejected", 422)] * 3 + [("already applied", 200)]
    reasons = [item["reason"] for item in results]
    assert reasons[1] == "action: Input should be 'register' or 'unregister'"
    assert reasons[2] == "Abandon ship registrations name a lifeboat only"
    assert "xxxxxxxxxx" not in reasons[3] and len(reasons[3]) <= 200


async def test_a_registration_of_deleted_reference_data_is_kept(
    own_server: ServerProcess, ship_dir: Path
) -> None:
    """The office deleted a profile and a lifeboat after a device registered them offline:
    the muster still happened, so the server stores both and its status page counts them."""
    gone_profile = registration("P0000030", "C")
    gone_lifeboat = registration("P0000031", "LB02", SafetyMode.ASHSHP)
    never_known = registration("P9999999", "C")
    async with ServerClient(own_server.url) as client:
        await client.sign_in("office", "office")
        await client.post_changes(
            [
                RecordChange(key="reservations", id="P0000030", op="delete"),
                *_move_off(set(profiles_in(ship_dir, "LB02")) - {"P0000030"}),
                RecordChange(key="lifeboats", id="LB02", op="delete"),
            ]
        )
        receipt = await client.post_registrations([gone_profile, gone_lifeboat, never_known])
        assert [(r.outcome, r.status) for r in receipt.results] == [(ItemOutcome.APPLIED, 200)] * 3
        assert (await client.standing("P0000030", SafetyMode.GENASS)) is not None
    page = httpx.get(own_server.url, timeout=10).text
    assert "Registrations of a profile no longer in the ship's data: 2" in page
    assert "Registrations at a muster station or lifeboat no longer in the ship's data: 1" in page


def profiles_in(ship_dir: Path, lifeboat: str) -> list[str]:
    sql = f"SELECT profile_id FROM '{ship_dir}/reservations.parquet' WHERE lifeboat = ?"
    return [row[0] for row in duckdb.execute(sql, [lifeboat]).fetchall()]


def _move_off(profile_ids: set[str]) -> list[RecordChange]:
    return [
        RecordChange(key="reservations", id=pid, op="set", fields={"lifeboat": "LB01"}) for pid in profile_ids
    ]


async def test_counts_follow_registrations_at_a_station(client: ServerClient) -> None:
    mode = SafetyMode.EMERCY  # only this test registers in this mode
    before = await client.counts(mode, "C")
    assert (before.registered, before.not_registered) == (0, before.assigned)
    assert len(before.missing) == before.assigned > 2
    own = [person.profile_id for person in before.missing[:2]]
    stranger = registration("P0000001", "C", mode)  # assigned to B, registered at C
    await client.post_registrations([registration(pid, "C", mode) for pid in own] + [stranger])
    after = await client.counts(mode, "C", missing_limit=5)
    assert (after.registered, after.not_registered) == (3, before.assigned - 2)
    assert (after.own_registered, after.from_other_stations, after.at_other_stations) == (2, 1, 0)
    assert len(after.missing) == 5 and not {p.profile_id for p in after.missing} & set(own)
    later = AT + timedelta(minutes=1)
    await client.post_registrations([registration(own[0], "C", mode, RegistrationAction.UNREGISTER, later)])
    assert (await client.counts(mode, "C")).registered == 2
    with pytest.raises(ServerRejected) as refused:
        await client.counts(mode, "ZZ")
    assert refused.value.status_code == 404


async def test_standing_after_register_then_unregister(client: ServerClient) -> None:
    mode, person = SafetyMode.GENASS, "P0000030"
    assert await client.standing(person, mode) is None
    registered = registration(person, "A", mode, at=AT)
    await client.post_registrations([registered])
    standing = await client.standing(person, mode)
    assert standing is not None
    assert (standing.place, standing.username, standing.time_of_day) == ("A", "demo", "09:30 UTC-04:00")
    assert standing.registration_id == registered.registration_id
    assert await client.standing(person, SafetyMode.ASHSHP) is None
    gone = registration(person, "A", mode, RegistrationAction.UNREGISTER, AT + timedelta(minutes=2))
    await client.post_registrations([gone])
    assert await client.standing(person, mode) is None


async def test_hostile_username_is_stored_as_given(client: ServerClient) -> None:
    mode, person = SafetyMode.GENASS, "P0000040"
    receipt = await client.post_registrations([registration(person, "D", mode, username=HOSTILE)])
    assert receipt.results[0].outcome is ItemOutcome.APPLIED
    standing = await client.standing(person, mode)
    assert standing is not None and standing.username == HOSTILE
    assert (await client.counts(mode, "D")).registered >= 1


async def test_card_lookup(client: ServerClient, server: ServerProcess, ship_dir: Path) -> None:
    person = await client.find_card(f" {card_of(ship_dir, 'P0000001')}\n")
    assert person is not None and person.profile_id == "P0000001"
    assert await client.find_card("0000") is None
    with pytest.raises(BadCard):
        await client.find_card("12;DROP TABLE")
    answer = httpx.get(
        f"{server.url}{API_PREFIX}/profiles/by-card/ab%1B[31m",
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=10,
    )
    assert answer.status_code == 422
    assert "is not a card number" in answer.json()["detail"]


async def test_search_by_name_prefix(client: ServerClient) -> None:
    found = await client.search("[/x")  # a fixture last name that is Rich markup
    assert [person.last_name for person in found] == ["[/x]"]
    some = await client.search("b", limit=3)
    assert len(some) == 3 and all(
        any((part or "").lower().startswith("b") for part in (p.first_name, p.last_name)) for p in some
    )
    assert await client.search("   ") == []
    with pytest.raises(ServerRejected) as refused:
        await client.search("b", limit=51)
    assert refused.value.status_code == 422


def test_muster_stations_in_natural_order() -> None:
    codes = ["F", "ES10", "A", "ES2", "N", "E", "ES1", "B2", "B10"]
    with duckdb.connect() as cur:
        cur.execute("CREATE TABLE muster_stations AS SELECT unnest(?) AS code, NULL AS name", [codes])
        shown = [place.code for place in muster.places(cur, SafetyMode.GENASS)]
    assert shown == ["A", "B2", "B10", "E", "F", "N", "ES1", "ES2", "ES10"]


async def test_places_and_general_parameters(client: ServerClient) -> None:
    stations = await client.places(SafetyMode.GENASS)
    assert [place.code for place in stations] == ["A", "B", "C", "D", "ES1", "ES2"]
    assert stations[0].name == "Grand Theater"
    assert (await client.places(SafetyMode.ASHSHP))[0].code == "LB01"
    assert await client.parameter("safety_mode") == "GENASS"
    assert await client.parameter("no_such_parameter") is None


async def test_a_batch_over_the_limit_is_refused_whole(server: ServerProcess, client: ServerClient) -> None:
    batch = [raw(registration("P0000050", "A")) for _ in range(REGISTRATION_BATCH_MAX + 1)]
    answer = post_raw(server, batch, client.token)
    assert answer.status_code == 422
    assert await client.standing("P0000050", SafetyMode.GENASS) is None
    with pytest.raises(ValueError, match="1 to 500"):
        await client.post_registrations([registration("P0000050", "A")] * (REGISTRATION_BATCH_MAX + 1))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/registrations"),
        ("GET", "/musters/GENASS/places"),
        ("GET", "/musters/GENASS/places/A/counts"),
        ("GET", "/musters/GENASS/standing/P0000001"),
        ("GET", "/profiles/by-card/1234567890"),
        ("GET", "/profiles?search=a"),
        ("GET", "/parameters/safety_mode"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer not-a-token"])
def test_muster_endpoints_need_a_token(
    live_server: ServerProcess, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    body = {"registrations": [raw(registration("P0000001", "B"))]}
    answer = httpx.request(
        method, f"{live_server.url}{API_PREFIX}{path}", headers=headers, json=body, timeout=10
    )
    assert answer.status_code == 401


async def test_upload_is_never_retried_by_the_client() -> None:
    calls: list[httpx.Request] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503, json={"detail": "busy"})
        raise httpx.ConnectError("down", request=request)

    async with ServerClient("http://ship.test", transport=httpx.MockTransport(failing)) as client:
        with pytest.raises(ServerRejected):
            await client.post_registrations([registration("P0000001", "B")])
        with pytest.raises(ServerUnreachable):
            await client.post_registrations([registration("P0000001", "B")])
    assert len(calls) == 2


async def test_a_lookup_answer_of_the_wrong_shape_is_malformed() -> None:
    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": "A"} if request.url.path.endswith("/places") else [1, 2])

    async with ServerClient("http://ship.test", transport=httpx.MockTransport(wrong)) as client:
        with pytest.raises(MalformedResponse):
            await client.places(SafetyMode.GENASS)
        with pytest.raises(MalformedResponse):
            await client.counts(SafetyMode.GENASS, "A")
        with pytest.raises(MalformedResponse):
            await client.standing("P0000001", SafetyMode.GENASS)
