"""Sessions survive a restart of the server: a crew member's Retry works once the server is
back (they used to be signed out by every restart), tokens still expire, and the store keeps
only each token's SHA-256."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures.postgres import read_store
from sync_core.clock import FrozenClock, SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.session import sign_in
from sync_core.duck import Database
from sync_core.protocol import SyncState
from sync_core.server.process import ServerProcess
from sync_core.server.schema import SESSIONS_DDL
from sync_core.server.tokens import TokenRegistry

from .conftest import portraits_option, start_server

ON_BOTH_ENGINES = True

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HOUR = 3600.0


async def test_a_device_syncs_again_after_the_server_restarts(
    ship_dir: Path, tmp_path: Path, device_store_path: Path, new_server_db: Any
) -> None:
    db = new_server_db(tmp_path)
    server = start_server(ship_dir, tmp_path, db)
    port = int(server.url.rsplit(":", 1)[1])
    store = DeviceStore(device_store_path)
    try:
        async with ServerClient(server.url) as client:
            await sign_in(client, store, "demo", "demo")
            engine = SyncEngine(store, client, SystemClock())
            assert (await engine.sync(server.server_id)).status is SyncState.SUCCESS
            server.stop()
            stored = read_store(db, "SELECT * FROM sessions")
            server = ServerProcess(
                ship_dir, db, tmp_path / "server.log", port=port, options=portraits_option(tmp_path)
            )
            server.start()
            again = await engine.sync(server.server_id)  # the same token, as Retry sends it
            assert (again.status, again.kind) == (SyncState.SUCCESS, "delta"), again.error
        assert client.token is not None
        assert [row[0] for row in stored] == [hashlib.sha256(client.token.encode()).hexdigest()]
        assert client.token not in repr(stored)
    finally:
        store.close()
        server.stop()


def test_a_token_expires_after_its_lifetime_even_across_a_restart(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    db = Database(tmp_path / "server.duckdb")
    try:
        with db.cursor() as cur:
            cur.execute(SESSIONS_DDL)  # a migration of the server store makes it
        tokens = TokenRegistry(clock, db, lifetime=12 * HOUR)
        early = tokens.issue("demo", "crew")
        clock.advance(6 * HOUR)
        late = tokens.issue("office", "office")
        restarted = TokenRegistry(clock, db, lifetime=12 * HOUR)
        assert restarted.resolve(early) is not None and restarted.resolve(late) is not None
        assert restarted.resolve("not a token") is None
        clock.advance(6 * HOUR)
        assert restarted.resolve(early) is None and tokens.resolve(early) is None
        grant = restarted.resolve(late)
        assert grant is not None and (grant.username, grant.role) == ("office", "office")
        TokenRegistry(clock, db)  # a start removes the expired sessions
        with db.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM sessions").fetchall() == [(1,)]
    finally:
        db.close()
