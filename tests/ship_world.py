"""An in-process ship for tests of the device runtime without Textual: the real server app
over its own DuckDB file, reached through ``httpx.ASGITransport`` behind a switchable link,
and device runtimes on a frozen clock whose probes follow the same link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import httpx
from fastapi import FastAPI

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient
from sync_core.device.connectivity import ConnectivityMonitor
from sync_core.device.registrar import Post, Registrar
from sync_core.device.runtime import DeviceRuntime
from sync_core.protocol import API_PREFIX, SafetyMode, SyncState
from sync_core.server.app import create_app
from sync_core.server.serve import open_store
from sync_core.server.store import ServerStore
from tests.registering import onboard_cards

URL = "http://ship.test:8000"
SIGN_IN = f"{API_PREFIX}/sign-in"


@dataclass
class Link(httpx.AsyncBaseTransport):
    """The way to the server app: refuses every request while ``down``; while ``frozen``
    requests hang until the link thaws (a SIGSTOPped server). ``requests`` counts requests
    by path, ``sign_ins`` sign-ins by username."""

    app: FastAPI
    down: bool = False
    frozen: bool = False
    requests: dict[str, int] = field(default_factory=dict)
    sign_ins: dict[str, int] = field(default_factory=dict)
    _thawed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.serve(self.app)

    def serve(self, app: FastAPI) -> None:
        """Lead to ``app`` from now on (a restarted server)."""
        self.app = app
        self._asgi = httpx.ASGITransport(app=app)

    def freeze(self, frozen: bool = True) -> None:
        """Freeze (or thaw) the server: requests wait without an answer."""
        self.frozen = frozen
        if frozen:
            self._thawed.clear()
        else:
            self._thawed.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("link down (test)", request=request)
        if self.frozen:
            await self._thawed.wait()
        path = request.url.path
        self.requests[path] = self.requests.get(path, 0) + 1
        if path == SIGN_IN:
            username = json.loads(request.content)["username"]
            self.sign_ins[username] = self.sign_ins.get(username, 0) + 1
        return await self._asgi.handle_async_request(request)

    async def reach(self, host: str, port: int) -> None:
        """The network and TCP probes: fail at once while down."""
        if self.down:
            raise OSError(f"{host}:{port} unreachable (test)")


class Ship:
    """The server app over ``store`` with its ``clock``, behind a :class:`Link`."""

    def __init__(self, store: ServerStore, clock: FrozenClock, token_lifetime: float = 12 * 3600) -> None:
        self.store = store
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.link = Link(create_app(store, clock, token_lifetime=token_lifetime))

    def restart(self) -> None:
        """A new server app over the same store: what it kept in memory is gone."""
        self.link.serve(create_app(self.store, self.clock, token_lifetime=self.token_lifetime))

    def runtime(self, device: DeviceStore, *, unattended: bool = False) -> DeviceRuntime:
        """A device runtime over ``device``, talking to this ship through its link."""
        client = ServerClient(URL, transport=self.link)
        monitor = ConnectivityMonitor(
            URL, clock=self.clock, network=self.link.reach, tcp=self.link.reach, transport=self.link
        )
        return DeviceRuntime(device, client, monitor, self.clock, unattended=unattended)


@asynccontextmanager
async def running(runtime: DeviceRuntime) -> AsyncIterator[DeviceRuntime]:
    """``runtime`` started, and closed at the end."""
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def registering(runtime: DeviceRuntime, ship_dir: Path, *, sync: bool = False) -> tuple[Registrar, str]:
    """Sign demo in on ``runtime`` (and full-sync first when ``sync``); a registrar in
    general assembly at the station of the first on-board person, and that station."""
    session = (await runtime.sign_in("demo", "demo")).session
    if sync:
        assert (await runtime.sync_now(session.server_id or "")).status is SyncState.SUCCESS
    station = onboard_cards(ship_dir, count=1)[0][2]
    post = Post("demo", SafetyMode.GENASS, station, runtime.clock, UTC)
    return await runtime.registrar(post), station


def imported_store(ship_dir: Path, where: Path) -> ServerStore:
    """A new server store in ``where`` with the ship imported."""
    return open_store(ship_dir, where / "server.duckdb")


async def until(condition: object, rounds: int = 400) -> None:
    """Yield to the loop until ``condition()`` holds (a bounded number of times)."""
    for _ in range(rounds):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")
