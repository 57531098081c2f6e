"""Real-size portraits in bounded memory: a device whose DuckDB ``memory_limit`` is a
fraction of its ship's portraits still full syncs, syncs again and takes new portraits by
delta; a device keeps the portraits of an answer as its record batches arrive; a ship's import
refuses a portrait a device would refuse, naming its profile.

The limit is lowered (as a handheld's 64 MB is to hundreds of MB of portraits) so that a
small ship, quick to make, has portraits several times over it.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixtures.portraits import IdPhotos
from fixtures.ship import Preset, generate_ship
from sync_core.device import DeviceStore, ServerClient
from sync_core.device import store as device_store
from sync_core.device.headless import sync_once
from sync_core.errors import ShipDataError
from sync_core.protocol import ARROW_STREAM, SyncState
from sync_core.server.process import ServerProcess
from sync_core.server.store import open_server_store

from .conftest import start_server
from .faults import BrokenOff, FaultyTransport

MEMORY_LIMIT_MB = 16
PORTRAIT_KB = 80
PROFILES = 600  # about 48 MB of portraits: three times the limit
NEW_PORTRAITS = 20


@pytest.fixture(scope="module")
def photo_ship(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("photo-ship")
    generate_ship(Preset.scaled(PROFILES), 5, out, portrait_kb=PORTRAIT_KB)
    return out


@pytest.fixture
def photo_server(photo_ship: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server(photo_ship, tmp_path)
    yield server
    server.stop()


@pytest.mark.timeout(300)  # three syncs of 48 MB of portraits: minutes when the machine is busy
async def test_full_sync_sync_now_and_a_delta_of_new_portraits_under_the_memory_limit(
    photo_ship: Path, photo_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    portraits = pq.read_table(photo_ship / "pictures.parquet", columns=["jpeg"]).column("jpeg")
    assert sum(len(jpeg) for jpeg in portraits.to_pylist()) > 2.5 * MEMORY_LIMIT_MB * 1024 * 1024
    monkeypatch.setattr(device_store, "DEVICE_SETTINGS", {"memory_limit": f"{MEMORY_LIMIT_MB}MB"})
    store = DeviceStore(tmp_path / "device.duckdb")
    with store.db.cursor() as cur:
        limit = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.startswith(("15.", "16.")) and limit.endswith("MiB")

    first = await sync_once(photo_server.url, store, "demo", "demo")
    assert (first.status, first.kind, first.datasets["pictures"].count) == (
        SyncState.SUCCESS,
        "full",
        PROFILES,
    )
    again = await sync_once(photo_server.url, store, "demo", "demo", full=True)  # Sync Now
    assert (again.status, again.kind, again.datasets["pictures"].count) == (
        SyncState.SUCCESS,
        "full",
        PROFILES,
    )

    draw, rng = IdPhotos(PORTRAIT_KB), random.Random(11)
    async with ServerClient(photo_server.url) as office:
        await office.sign_in("office", "office")
        for number in range(1, NEW_PORTRAITS + 1):
            profile_id = f"P{number:07d}"
            await office.put_picture(profile_id, draw(rng, f"{profile_id}-new", uniform=False))
    delta = await sync_once(photo_server.url, store, "demo", "demo")
    assert (delta.status, delta.kind) == (SyncState.SUCCESS, "delta"), delta.error
    pictures = delta.datasets["pictures"]
    assert pictures.status is SyncState.SUCCESS and pictures.count == PROFILES
    assert pictures.changes == 2 * NEW_PORTRAITS  # each old portrait deleted, each new one added
    assert len(set(store.portraits.held())) == PROFILES  # the replaced ones' files are gone
    store.close()


class SecondAnswerBrokenOff:
    """Passes the first answer of portraits whole and breaks the second off 9/10 of the way
    (after its first record batches); ``first`` counts the portraits of the first."""

    def __init__(self) -> None:
        self.answers = 0
        self.first = 0

    def __call__(self, request: httpx.Request, body: bytes) -> tuple[bytes | BrokenOff, str] | None:
        if request.method != "POST" or not request.url.path.endswith("/pictures"):
            return None
        self.answers += 1
        if self.answers == 1:
            self.first = pa.ipc.open_stream(body).read_all().num_rows
            return None
        if self.answers == 2:
            assert len(list(pa.ipc.open_stream(body))) > 1  # several record batches
            return BrokenOff(body, len(body) * 9 // 10), ARROW_STREAM
        return None


async def test_the_portraits_of_an_answer_are_kept_as_its_batches_arrive(
    photo_server: ServerProcess, tmp_path: Path
) -> None:
    """A request for portraits holds one record batch, not the whole answer: when the
    connection drops late in an answer, the portraits of its batches that arrived whole are
    in their files already; the run fails as unreachable and nothing is swapped in."""
    store = DeviceStore(tmp_path / "device.duckdb")
    faults = SecondAnswerBrokenOff()
    status = await sync_once(photo_server.url, store, "demo", "demo", transport=FaultyTransport(faults))
    assert status.status is SyncState.FAILED
    assert "dropped mid-answer" in (status.error or ""), status.error
    assert faults.first > 0
    assert len(set(store.portraits.held())) > faults.first
    assert store.sync_point() is None
    store.close()


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda jpeg: jpeg[: len(jpeg) // 2], "truncated JPEG"),
        (lambda jpeg: b"GIF89a" + jpeg[6:], "not a JPEG"),
        (lambda jpeg: jpeg[:-2] + b"\0" * 300_000 + jpeg[-2:], "oversize"),
    ],
    ids=["truncated", "corrupt", "oversize"],
)
def test_the_import_refuses_a_bad_portrait_naming_its_profile(
    ship_dir: Path, tmp_path: Path, spoil, problem: str
) -> None:
    ship = tmp_path / "ship"
    shutil.copytree(ship_dir, ship)
    pictures = pq.read_table(ship / "pictures.parquet").to_pylist()
    bad = pictures[7]
    bad["jpeg"] = spoil(bad["jpeg"])  # its hash is left as the ship names it
    schema = pq.read_schema(ship / "pictures.parquet")
    pq.write_table(pa.Table.from_pylist(pictures, schema=schema), ship / "pictures.parquet")
    store = open_server_store(tmp_path / "server.duckdb")
    with pytest.raises(ShipDataError, match=f"profile {bad['profile_id']} is refused: {problem}"):
        store.import_ship(ship)
    assert not store.imported
    store.close()
