"""The empty delta poll answered before the web framework (sync_core/server/empty_polls.py):
from memory when it can, and by the app, as ever, for everything else: other cursors, bad
queries, tokens not held, revoked or expired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sync_core.clock import FrozenClock
from sync_core.protocol import API_PREFIX, ARROW_STREAM, PAGE_CURSOR, PAGE_MORE
from sync_core.server.app import create_app, empty_page_bytes
from sync_core.server.empty_polls import EmptyPolls
from sync_core.server.store import ServerStore
from sync_core.server.tokens import TokenRegistry

ON_BOTH_ENGINES = True
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CHANGES = f"{API_PREFIX}/changes"
EDITS = f"{API_PREFIX}/admin/changes"


class _App:
    """The app behind the middleware: answers 299 and counts what reached it."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.reached.append(f"{scope['path']}?{scope['query_string'].decode()}")
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def tokens(server_store: ServerStore, clock: FrozenClock) -> TokenRegistry:
    return TokenRegistry(clock, server_store, lifetime=3600)


async def _get(app: Any, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://muster.test") as http:
        return await http.get(url, headers=headers)


async def test_an_empty_poll_is_answered_from_memory_and_the_rest_reaches_the_app(
    server_store: ServerStore, tokens: TokenRegistry, clock: FrozenClock
) -> None:
    inner = _App()
    app = EmptyPolls(inner, server_store, tokens, empty_page_bytes)
    token = tokens.issue("demo", "crew")
    latest = server_store.feed_bounds()[1]
    answered = await _get(app, f"{CHANGES}?after={latest}&limit=500", token)
    assert answered.status_code == 200 and answered.headers["content-type"] == ARROW_STREAM
    page = pa.ipc.open_stream(answered.content).read_all()
    assert page.num_rows == 0
    assert page.schema.metadata[PAGE_CURSOR] == str(latest).encode()
    assert page.schema.metadata[PAGE_MORE] == b"0"
    assert inner.reached == []
    for query in (
        f"after={latest - 1}&limit=500",  # changes to read
        f"after={latest + 1}&limit=500",  # ahead of the feed: the app answers 410
        f"after={latest}&limit=0",
        f"after={latest}&limit=10001",
        f"after=+{latest}&limit=5",
        f"after={latest}",
        f"after={latest}&limit=5&after=0",
        f"after={latest}&limit=5&x=1",
        "after=%FF&limit=5",
    ):
        assert (await _get(app, f"{CHANGES}?{query}", token)).status_code == 299, query
    assert (await _get(app, f"{CHANGES}?after={latest}&limit=5", None)).status_code == 299
    assert (await _get(app, f"{CHANGES}?after={latest}&limit=5", "not-a-token")).status_code == 299
    assert (await _get(app, f"{API_PREFIX}/profiles?after={latest}&limit=5", token)).status_code == 299
    clock.advance(3600)  # the session expired
    assert (await _get(app, f"{CHANGES}?after={latest}&limit=5", token)).status_code == 299


@pytest.fixture
async def http(server_store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(server_store, FrozenClock(T0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://muster.test") as http:
        yield http


async def _bearer(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    signed_in = await http.post(f"{API_PREFIX}/sign-in", json={"username": username, "password": username})
    return {"Authorization": f"Bearer {signed_in.json()['token']}"}


async def test_a_change_is_fetched_not_skipped_and_a_revoked_session_is_refused(
    server_store: ServerStore, http: httpx.AsyncClient
) -> None:
    crew, office = await _bearer(http, "demo"), await _bearer(http, "office")
    latest = server_store.feed_bounds()[1]
    empty = await http.get(f"{CHANGES}?after={latest}&limit=5", headers=crew)
    assert empty.status_code == 200 and pa.ipc.open_stream(empty.content).read_all().num_rows == 0
    change = {"key": "lifeboats", "id": "LB01", "op": "set", "fields": {"description": "Aft"}}
    assert (
        await http.post(f"{API_PREFIX}/admin/changes", json={"changes": [change]}, headers=office)
    ).is_success
    page = await http.get(f"{CHANGES}?after={latest}&limit=5", headers=crew)
    assert pa.ipc.open_stream(page.content).read_all().num_rows == 1  # the lifeboats page
    deleted = {"key": "users", "id": "demo", "op": "delete", "fields": {}}
    assert (
        await http.post(f"{API_PREFIX}/admin/changes", json={"changes": [deleted]}, headers=office)
    ).is_success
    latest = server_store.feed_bounds()[1]
    assert (await http.get(f"{CHANGES}?after={latest}&limit=5", headers=crew)).status_code == 401
