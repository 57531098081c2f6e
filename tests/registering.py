"""Helpers for tests that register people on a device synced from the real server: a frozen
``NOW``, a switchable network, on-board cards from the ship's data, a synced device with its
uploader and registrar, and the server's registered count."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.registrar import Post, Registrar, Result
from sync_core.device.session import sign_in
from sync_core.device.status import UploadStatus
from sync_core.device.upload import Uploader
from sync_core.protocol import API_PREFIX, SafetyMode, SyncState
from sync_core.server.process import ServerProcess

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
REGISTRATIONS = f"{API_PREFIX}/registrations"


class Network(httpx.AsyncBaseTransport):
    """The real transport behind a switch (``down``), which can also drop the answer of the
    next registration upload after the server has handled it (``drop_next_answer``), or
    hold uploads until ``release`` is set."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.down = False
        self.drop_next_answer = False
        self.release: asyncio.Event | None = None
        self.uploads: list[int] = []  # items per upload request that reached the server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("network down (test)", request=request)
        uploading = request.url.path == REGISTRATIONS
        if uploading and self.release is not None:
            await self.release.wait()
        response = await self.real.handle_async_request(request)
        body = await response.aread()
        if uploading:
            self.uploads.append(len(json.loads(request.content)["registrations"]))
            if self.drop_next_answer:
                self.drop_next_answer = False
                raise httpx.ReadError("connection dropped before the answer (test)", request=request)
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        await self.real.aclose()


@dataclass
class Device:
    """A synced device: store, engine, uploader and a registrar at the first card's station."""

    store: DeviceStore
    client: ServerClient
    uploader: Uploader
    registrar: Registrar
    clock: FrozenClock
    published: list[UploadStatus]


def onboard_cards(ship_dir: Path, station: str | None = None, count: int = 5) -> list[tuple[str, str, str]]:
    """``(card, profile_id, muster_station)`` of on-board people, at ``station`` if given."""
    where = "movement_status = 'Onboard'" + (f" AND muster_station = '{station}'" if station else "")
    return duckdb.sql(
        f"SELECT board_card_number, profile_id, muster_station FROM '{ship_dir}/reservations.parquet' "
        f"WHERE {where} ORDER BY profile_id LIMIT {count}"
    ).fetchall()


@asynccontextmanager
async def synced_device(
    server: ServerProcess, path: Path, station: str, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Device]:
    """A device that has full-synced from ``server``, signed in as demo, registering at
    ``station`` in general assembly; its uploader is not running until the test starts it."""
    store = DeviceStore(path)
    clock = FrozenClock(NOW)
    published: list[UploadStatus] = []
    async with ServerClient(server.url, transport=transport) as client:
        await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, clock)
        assert (await engine.sync(server.server_id)).status is SyncState.SUCCESS
        uploader = Uploader(
            store.outbox, client, clock, server.server_id, published.append, rng=random.Random(4)
        )
        post = Post("demo", SafetyMode.GENASS, station, clock, UTC)
        registrar = await Registrar.on_device(store, client, server.server_id, uploader.kick, post)
        try:
            yield Device(store, client, uploader, registrar, clock, published)
        finally:
            store.close()


async def server_registered(server: ServerProcess, station: str) -> int:
    """How many people the server counts as registered at ``station`` in general assembly."""
    async with ServerClient(server.url) as client:
        await client.sign_in("demo", "demo")
        return (await client.counts(SafetyMode.GENASS, station)).registered


async def register_all(device: Device, cards: list[tuple[str, str, str]]) -> None:
    """Scan each card on ``device``'s registrar, asserting every scan registers."""
    for card, _, _ in cards:
        assert (await device.registrar.scan(card)).result is Result.REGISTERED
