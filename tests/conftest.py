"""Shared fixtures: the `small` ship, the real Mustering server on 127.0.0.1, device stores.

The server runs as a real child process (``muster server --port 0``) over its own DuckDB
file; tests talk to it with the real client (DEVELOPERS.md, "Real parts").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_core.server.process import ServerProcess
from sync_core.server.store import ServerStore

SMALL_SEED = 7


@pytest.fixture(scope="session")
def ship_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `small` preset's Parquet files, generated once per test run."""
    from fixtures.ship import generate_ship

    out = tmp_path_factory.mktemp("ship")
    generate_ship("small", SMALL_SEED, out)
    return out


def start_server(ship_dir: Path, where: Path) -> ServerProcess:
    """A started server over a new DuckDB file in ``where`` (the caller stops it)."""
    server = ServerProcess(ship_dir, where / "server.duckdb", where / "server.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def live_server(ship_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the session (read-only use: tests must not change its data)."""
    server = start_server(ship_dir, tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


@pytest.fixture
def own_server(ship_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own, for tests that kill or change it."""
    server = start_server(ship_dir, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def server_store(ship_dir: Path, tmp_path: Path) -> Iterator[ServerStore]:
    """A server store of this test's own with the small ship imported, for an in-process app."""
    store = ServerStore(tmp_path / "server.duckdb")
    store.import_ship(ship_dir)
    yield store
    store.close()


@pytest.fixture
def device_store_path(tmp_path: Path) -> Path:
    """A path for a fresh device store (the file does not exist yet)."""
    return tmp_path / "device.duckdb"
