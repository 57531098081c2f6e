"""A handheld's files hold no personal data in clear (docs/security.md): after a full sync of
the small ship, none of the fixture's names, card numbers, passport numbers or a 64-byte slice
of any portrait is in the raw bytes of any file of the device's data directory, nor after the
retention wipe, whose kept registration still uploads exactly once; a synced user who never
signed in on this device signs in offline and reads the data; a wrong password opens nothing.

Against the real server (tests/conftest.py: the `small` ship, seed 7) and a real device file.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from fixtures.ship import fixture_passwords
from sync_core.device import DeviceStore, ServerClient
from sync_core.device.headless import sync_once
from sync_core.device.people import People
from sync_core.device.retention import wipe
from sync_core.device.session import sign_in
from sync_core.errors import InvalidLogin, ServerUnreachable, StoreLocked
from sync_core.protocol import Registration, RegistrationAction, SafetyMode
from sync_core.server.process import ServerProcess

from .conftest import SMALL_SEED
from .registering import NOW, Network, onboard_cards, register_all, server_registered, synced_device

# Shorter names could turn up by chance in a few megabytes of ciphertext.
NAME_MIN = 5


def personal_needles(ship_dir: Path) -> dict[str, list[bytes]]:
    """What must not be found, by kind: names (of NAME_MIN characters or more), card and
    passport numbers, and 64 bytes from the middle of each portrait."""
    reservations = f"'{ship_dir / 'reservations.parquet'}'"
    texts = {
        "names": f"SELECT first_name FROM {reservations} UNION SELECT last_name FROM {reservations} "
        f"UNION SELECT display_name FROM '{ship_dir / 'users.parquet'}' WHERE username LIKE 'crew%'",
        "cards": f"SELECT board_card_number FROM {reservations}",
        "passports": f"SELECT passport_masked FROM {reservations}",
    }
    needles = {
        kind: [row[0].encode() for row in duckdb.sql(sql).fetchall() if row[0] and len(row[0]) >= NAME_MIN]
        for kind, sql in texts.items()
    }
    jpegs = duckdb.sql(f"SELECT jpeg FROM '{ship_dir / 'pictures.parquet'}'").fetchall()
    needles["portraits"] = [jpeg[len(jpeg) // 2 : len(jpeg) // 2 + 64] for (jpeg,) in jpegs]
    assert all(len(found) > 10 for found in needles.values())  # the check has something to find
    return needles


def found_in_files(directory: Path, needles: dict[str, list[bytes]]) -> dict[str, int]:
    """How many needles of each kind occur in the raw bytes of any file under ``directory``."""
    files = [path.read_bytes() for path in directory.rglob("*") if path.is_file()]
    assert files
    found = {}
    for kind, wanted in needles.items():
        pattern = re.compile(b"|".join(re.escape(needle) for needle in wanted))
        found[kind] = len({match.group() for data in files for match in pattern.finditer(data)})
    return found


NOTHING = {"names": 0, "cards": 0, "passports": 0, "portraits": 0}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The device's data directory (nothing else in it)."""
    path = tmp_path / "device"
    path.mkdir(mode=0o700)
    return path


async def test_after_a_full_sync_no_file_holds_personal_data_in_clear(
    live_server: ServerProcess, ship_dir: Path, data_dir: Path
) -> None:
    needles = personal_needles(ship_dir)
    store = DeviceStore(data_dir / "device.duckdb")
    try:
        status = await sync_once(live_server.url, store, "demo", "demo")
        assert status.error is None
        assert len(store.view(People).get().everyone()) == status.datasets["reservations"].count
        assert found_in_files(data_dir, needles) == NOTHING  # the store open, its WAL beside it
    finally:
        store.close()
    assert found_in_files(data_dir, needles) == NOTHING


class _Down(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("network down (test)", request=request)


async def test_a_synced_user_new_to_the_device_signs_in_offline_and_a_wrong_password_opens_nothing(
    live_server: ServerProcess, data_dir: Path
) -> None:
    path = data_dir / "device.duckdb"
    store = DeviceStore(path)
    assert (await sync_once(live_server.url, store, "demo", "demo")).error is None
    store.close()
    crew01 = fixture_passwords("small", SMALL_SEED)["crew01"]
    async with ServerClient(live_server.url, transport=_Down()) as offline:
        store = DeviceStore(path)  # a restarted app: no key in memory
        try:
            with pytest.raises(StoreLocked):
                store.view(People).get().load()
            with pytest.raises(InvalidLogin):
                await sign_in(offline, store, "crew01", crew01 + "x")
            with pytest.raises(StoreLocked):
                store.view(People).get().load()
            session = await sign_in(offline, store, "crew01", crew01)
            assert not session.online and session.role == "crew" and " " in session.display_name
            people = store.view(People).get().load().everyone()
            assert people and all(person.last_name for person in people)
        finally:
            store.close()


async def test_after_the_wipe_no_file_holds_personal_data_and_the_kept_registration_uploads_once(
    own_server: ServerProcess, ship_dir: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    needles = personal_needles(ship_dir)
    station = onboard_cards(ship_dir, count=1)[0][2]
    network = Network()
    async with synced_device(own_server, data_dir / "device.duckdb", station, network) as device:
        network.down = True
        await register_all(device, onboard_cards(ship_dir, station, 1))
        report = await wipe(device.store, device.uploader)
        assert (report.kept, network.uploads) == (1, [])
        assert found_in_files(data_dir, needles) == NOTHING
        with pytest.raises(ServerUnreachable):  # no synced user left: not even a password opens it
            await sign_in(device.client, device.store, "demo", "demo")
        with pytest.raises(StoreLocked):
            device.store.view(People).get().load()
        network.down = False
        assert (await sign_in(device.client, device.store, "demo", "demo")).online
        assert (await device.uploader.drain()).sent == 1
        again = await device.uploader.drain()  # nothing more to send
        assert (again.pending, again.sent) == (0, 1)
    assert network.uploads == [1]
    assert await server_registered(own_server, station) == 1
    assert found_in_files(data_dir, needles) == NOTHING
    logged = caplog.text.encode()  # a sync, registrations, a failed upload, the wipe, sign-ins
    assert "network down" in caplog.text and not any(n in logged for found in needles.values() for n in found)


def test_a_store_from_before_sealing_is_wiped_at_open_keeping_its_unsynced_registrations(
    data_dir: Path,
) -> None:
    path = data_dir / "device.duckdb"
    store = DeviceStore(path)
    store.outbox.add(
        Registration(
            registration_id=str(uuid.uuid4()), profile_id="P0000001", action=RegistrationAction.REGISTER,
            safety_mode=SafetyMode.GENASS, muster_station="A", registered_at=NOW, username="demo",
            device_id=store.device_id,
        ),
        "server-1",
    )  # fmt: skip
    with store.db.cursor() as cur:  # the reservations as an older version kept them
        cur.execute("DROP TABLE reservations")
        cur.execute("CREATE TABLE reservations (profile_id VARCHAR, first_name VARCHAR)")
        cur.execute("INSERT INTO reservations VALUES ('P0000001', 'Bartholomew-in-clear')")
    device_id = store.device_id
    store.close()
    store = DeviceStore(path)
    try:
        assert store.device_id == device_id and store.outbox.tally("server-1").pending == 1
        assert store.datasets()["reservations"].count == 0
    finally:
        store.close()
    assert found_in_files(data_dir, {"names": [b"Bartholomew-in-clear"]}) == {"names": 0}
