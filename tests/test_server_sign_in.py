"""The server's sign-in: argon2id verifiers of any parameters, a bounded verification pool,
lockout, rate limit, equal timing, token revocation (docs/security.md, "Server sign-in").

In-process (``httpx.ASGITransport``) with a frozen clock where time matters; the pool and
HTTPS tests run a real server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from sync_core.clock import FrozenClock
from sync_core.device import ServerClient
from sync_core.protocol import RecordChange
from sync_core.server.app import create_app
from sync_core.server.edits import apply_changes
from sync_core.server.store import ServerStore

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def server_store(ship_dir: Path, tmp_path: Path) -> Iterator[ServerStore]:
    store = ServerStore(tmp_path / "server.duckdb")
    store.import_ship(ship_dir)
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def office(server_store: ServerStore, clock: FrozenClock) -> AsyncIterator[ServerClient]:
    """A client of the in-process app over ``server_store``, not yet signed in."""
    app = create_app(server_store, clock)
    async with ServerClient("http://muster.test", transport=httpx.ASGITransport(app)) as client:
        yield client


async def test_a_verifier_made_with_other_parameters_still_signs_in(
    server_store: ServerStore, office: ServerClient
) -> None:
    older = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash("older secret")
    change = RecordChange(key="users", id="demo", op="set", fields={"password_hash": older})
    apply_changes(server_store, [change])
    signed_in = await office.sign_in("demo", "older secret")
    assert signed_in.username == "demo"
