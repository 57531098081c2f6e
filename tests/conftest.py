"""Shared fixtures: the `small` ship, the real Mustering server on 127.0.0.1, device stores.

The server runs as a real child process (``muster server --port 0``) over its own store
(a DuckDB file, or a database of a throwaway PostgreSQL cluster on 127.0.0.1); tests talk to
it with the real client. A test module that sets ``ON_BOTH_ENGINES = True`` runs each of
its tests that use a server once per store engine (``store_engine``); the others run on
DuckDB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.postgres import Cluster, Running, running_at
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore
from sync_core.server.process import ServerProcess
from sync_core.server.store import ServerStore, open_server_store
from tests.registering import NOW
from tests.ship_world import Ship, imported_store

SMALL_SEED = 7
ENGINES = ("duckdb", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_engine" in metafunc.fixturenames and getattr(metafunc.module, "ON_BOTH_ENGINES", False):
        metafunc.parametrize("store_engine", ENGINES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def ship_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `small` preset's Parquet files, generated once per test run."""
    from fixtures.ship import generate_ship

    out = tmp_path_factory.mktemp("ship")
    generate_ship("small", SMALL_SEED, out)
    return out


@pytest.fixture(scope="session")
def store_engine(request: pytest.FixtureRequest) -> str:
    """The server store's engine: DuckDB unless the module runs on both."""
    return str(getattr(request, "param", "duckdb"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Running]:
    """A throwaway PostgreSQL cluster for the session, started when a test first needs it;
    the one ``MUSTER_PG_URL`` names when set (``.ci/run`` starts it)."""
    if os.environ.get("MUSTER_PG_URL"):
        yield running_at(os.environ["MUSTER_PG_URL"])
        return
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def new_server_db(request: pytest.FixtureRequest, store_engine: str) -> Any:
    """``new_server_db(where)``: the ``--db`` of a new, empty server store of the engine."""

    def new(where: Path) -> str:
        if store_engine == "postgresql":
            cluster: Running = request.getfixturevalue("pg_cluster")
            return cluster.new_database()
        return str(where / "server.duckdb")

    return new


def portraits_option(where: Path) -> tuple[str, ...]:
    """``muster server``'s option keeping the portrait files of a store of ``where`` in
    ``where/portraits`` (a PostgreSQL store needs one; a restart must name the same)."""
    return ("--portraits", str(where / "portraits"))


def start_server(ship_dir: Path, where: Path, db: str | None = None) -> ServerProcess:
    """A started server over ``db`` (default: a new DuckDB file in ``where``), its portrait
    files in ``where/portraits``; the caller stops it."""
    server = ServerProcess(
        ship_dir, db or where / "server.duckdb", where / "server.log", options=portraits_option(where)
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def live_server(
    ship_dir: Path, tmp_path_factory: pytest.TempPathFactory, new_server_db: Any
) -> Iterator[ServerProcess]:
    """One real server for the session (read-only use: tests must not change its data)."""
    where = tmp_path_factory.mktemp("server")
    server = start_server(ship_dir, where, new_server_db(where))
    yield server
    server.stop()


@pytest.fixture
def own_server(ship_dir: Path, tmp_path: Path, new_server_db: Any) -> Iterator[ServerProcess]:
    """A server of this test's own, for tests that kill or change it."""
    server = start_server(ship_dir, tmp_path, new_server_db(tmp_path))
    yield server
    server.stop()


@pytest.fixture
def server_store(ship_dir: Path, tmp_path: Path, new_server_db: Any) -> Iterator[ServerStore]:
    """A server store of this test's own with the small ship imported, for an in-process app
    (of the module's engine)."""
    store = open_server_store(new_server_db(tmp_path), tmp_path / "portraits")
    store.import_ship(ship_dir)
    yield store
    store.close()


@pytest.fixture
def device_store_path(tmp_path: Path) -> Path:
    """A path for a fresh device store (the file does not exist yet)."""
    return tmp_path / "device.duckdb"


@pytest.fixture
def ship(ship_dir: Path, tmp_path: Path) -> Iterator[Ship]:
    """The real server app in-process over its own store, on a frozen clock at ``NOW``
    (tokens of 12 hours), behind a switchable link."""
    store = imported_store(ship_dir, tmp_path)
    yield Ship(store, FrozenClock(NOW))
    store.close()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[DeviceStore]:
    """A fresh device store, closed after the test."""
    store = DeviceStore(tmp_path / "device.duckdb")
    yield store
    store.close()
