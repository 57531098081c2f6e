"""The connectivity monitor (docs/architecture.md, 'Online and offline'): which dependencies are up,
the mode with its hysteresis, and how fast a real outage shows.

Rules are checked on a FrozenClock with scripted probe results (no sleeping); a few tests
use the real server, a tiny HTTP server playing a captive portal, and real sockets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sync_core.clock import FrozenClock
from sync_core.device import connectivity
from sync_core.device.connectivity import (
    DEPENDENCIES,
    Connectivity,
    ConnectivityMonitor,
    DependencyState,
    Mode,
    parse_address,
)
from sync_core.errors import MalformedResponse
from sync_core.protocol import ComponentState, Health
from sync_core.server.process import ServerProcess

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SERVER = "http://10.20.0.5:8000"
VPN = "10.8.0.1:443"
UP, DOWN, UNSET = DependencyState.UP, DependencyState.DOWN, DependencyState.NOT_CONFIGURED
HEALTHY = Health(api=ComponentState.UP, db=ComponentState.UP, webapp=ComponentState.UP, server_id="s1")


class Scripted:
    """Probe results a test sets. ``down`` maps a probe (``network``, ``server``, ``vpn``,
    ``health``) to the error it raises; a probe in ``slow`` waits on the clock for an hour."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.down: dict[str, Exception] = {}
        self.slow: set[str] = set()
        self.health_body = HEALTHY
        self.rounds = 0

    async def _outcome(self, probe: str) -> None:
        if probe in self.slow:
            await self.clock.sleep(3600)
        if probe in self.down:
            raise self.down[probe]

    async def network(self, host: str, port: int) -> None:
        await self._outcome("network")

    async def tcp(self, host: str, port: int) -> None:
        await self._outcome("vpn" if f"{host}:{port}" == VPN else "server")

    async def health(self) -> Health:
        self.rounds += 1
        await self._outcome("health")
        return self.health_body


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def probes(clock: FrozenClock) -> Scripted:
    return Scripted(clock)


def scripted_monitor(probes: Scripted, vpn: str | None = VPN) -> ConnectivityMonitor:
    return ConnectivityMonitor(
        SERVER, vpn, clock=probes.clock, network=probes.network, tcp=probes.tcp, health=probes.health
    )


def states(result: Connectivity) -> dict[str, DependencyState]:
    return {name: dep.state for name, dep in result.dependencies.items()}


async def settle() -> None:
    """Let every task that can run without the clock moving run."""
    for _ in range(50):
        await asyncio.sleep(0)


REFUSED = ConnectionRefusedError(111, "Connection refused")


# -- rules, on a fake clock -----------------------------------------------------------


async def test_all_up_is_online(probes: Scripted) -> None:
    result = await scripted_monitor(probes).check()
    assert result.mode is Mode.ONLINE and result.online
    assert states(result) == dict.fromkeys(DEPENDENCIES, UP)
    assert all(dep.reason is None for dep in result.dependencies.values())
    assert result.checked_at == T0


async def test_no_vpn_target_is_not_configured_and_still_online(probes: Scripted) -> None:
    result = await scripted_monitor(probes, vpn=None).check()
    assert result.online
    assert result.dependencies["vpn"].state is UNSET
    assert result.to_cli_json()["dependencies"]["vpn"] == {
        "state": "not configured",
        "reason": "no VPN probe target configured",
    }


@pytest.mark.parametrize("probe", ["network", "vpn", "server"])
async def test_a_configured_dependency_down_at_start_is_offline(probes: Scripted, probe: str) -> None:
    probes.down[probe] = REFUSED
    result = await scripted_monitor(probes).check()
    assert result.mode is Mode.OFFLINE
    assert result.dependencies[probe].state is DOWN
    assert result.dependencies[probe].reason.endswith(": Connection refused")


async def test_a_component_the_server_reports_down_is_offline(probes: Scripted) -> None:
    probes.health_body = HEALTHY.model_copy(update={"db": ComponentState.DOWN})
    result = await scripted_monitor(probes).check()
    assert not result.online
    assert result.dependencies["db"] == connectivity.Dependency(
        state=DOWN, reason="the server reports db down"
    )
    assert result.dependencies["api"].state is UP


async def test_a_bad_health_answer_takes_api_db_and_webapp_down(probes: Scripted) -> None:
    probes.down["health"] = MalformedResponse("/health is not a valid Health")
    result = await scripted_monitor(probes).check()
    assert not result.online
    assert {name: states(result)[name] for name in ("network", "server")} == {"network": UP, "server": UP}
    for name in ("api", "db", "webapp"):
        assert result.dependencies[name].state is DOWN
        assert "is not a valid Health" in result.dependencies[name].reason


async def test_a_bad_vpn_target_is_down_with_the_reason(probes: Scripted) -> None:
    result = await scripted_monitor(probes, vpn="vpn-gateway").check()
    assert not result.online
    assert result.dependencies["vpn"].reason == "VPN probe target 'vpn-gateway' is not HOST:PORT"


async def test_no_server_is_offline_never_synced(probes: Scripted) -> None:
    result = await ConnectivityMonitor(None, clock=probes.clock).check()
    assert not result.online
    assert result.dependencies["server"] == connectivity.Dependency(state=UNSET, reason="never synced")
    assert result.dependencies["vpn"].state is UNSET


async def test_one_slow_round_does_not_flip_the_mode(probes: Scripted) -> None:
    monitor = scripted_monitor(probes)
    assert (await monitor.check()).online
    probes.slow.add("health")
    slow_round = asyncio.create_task(monitor.check())
    await settle()
    assert not slow_round.done()
    probes.clock.advance(monitor.timeout)
    result = await slow_round
    assert result.online, "one slow round must not make the device offline"
    assert result.dependencies["api"].reason == "/health: no answer within 2 s"
    probes.slow.clear()
    assert states(await monitor.check()) == dict.fromkeys(DEPENDENCIES, UP)


async def test_offline_after_two_failed_rounds_and_online_after_one_good(probes: Scripted) -> None:
    monitor = scripted_monitor(probes)
    assert (await monitor.check()).online
    probes.down["server"] = REFUSED
    assert (await monitor.check()).online
    assert (await monitor.check()).mode is Mode.OFFLINE
    assert (await monitor.check()).mode is Mode.OFFLINE
    probes.down.clear()
    assert (await monitor.check()).online


async def test_a_good_round_between_failures_restarts_the_count(probes: Scripted) -> None:
    monitor = scripted_monitor(probes)
    for down in (False, True, False, True, False):
        probes.down = {"network": REFUSED} if down else {}
        assert (await monitor.check()).online


async def advance_until(clock: FrozenClock, seen: list[Connectivity], mode: Mode) -> float:
    """Move ``clock`` in steps of 0.1 s until ``mode`` is published; the clock seconds it took."""
    started = clock.monotonic()
    for _ in range(100):
        if seen[-1].mode is mode:
            return clock.monotonic() - started
        clock.advance(0.1)
        await settle()
    raise AssertionError(f"still not {mode} after 10 s")


async def test_run_shows_an_outage_and_a_recovery_within_the_bounds(probes: Scripted) -> None:
    monitor = scripted_monitor(probes)
    seen: list[Connectivity] = []
    monitor.subscribe(seen.append)
    loop = asyncio.create_task(monitor.run())
    try:
        await settle()
        assert [c.mode for c in seen] == [Mode.ONLINE]
        probes.clock.advance(0.5)  # the outage starts between rounds
        probes.down["server"] = REFUSED
        assert await advance_until(probes.clock, seen, Mode.OFFLINE) <= monitor.offline_within == 6
        probes.down.clear()
        assert await advance_until(probes.clock, seen, Mode.ONLINE) <= monitor.online_within == 4
    finally:
        loop.cancel()
    # Published on change only: online; server down (still online); offline; online again.
    assert [(c.mode, c.dependencies["server"].state) for c in seen] == [
        (Mode.ONLINE, UP),
        (Mode.ONLINE, DOWN),
        (Mode.OFFLINE, DOWN),
        (Mode.ONLINE, UP),
    ]


async def test_rounds_start_every_interval(probes: Scripted) -> None:
    monitor = scripted_monitor(probes)
    loop = asyncio.create_task(monitor.run())
    try:
        await settle()
        for _ in range(3):
            probes.clock.advance(monitor.interval - 0.1)
            await settle()
            probes.clock.advance(0.1)
            await settle()
        assert probes.rounds == 4
    finally:
        loop.cancel()


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.8.0.1:443", ("10.8.0.1", 443)),
        ("vpn.ship.local:1194", ("vpn.ship.local", 1194)),
        ("[::1]:22", ("::1", 22)),
    ],
)
def test_parse_address(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "host", ":443", "host:", "host:0", "host:70000", "host:http"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_address(text)


# -- the health answer over HTTP ------------------------------------------------------


@contextmanager
def tiny_http(body: bytes, content_type: str) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering every GET with 200 and ``body``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PORTAL = b"<!doctype html><html><body><h1>Welcome aboard! Accept the terms to continue</h1></body></html>"


async def test_a_captive_portal_page_is_offline_with_the_reason() -> None:
    with tiny_http(PORTAL, "text/html") as url:
        async with ConnectivityMonitor(url) as monitor:
            result = await monitor.check()
    assert result.mode is Mode.OFFLINE
    assert states(result) == {
        "network": UP,
        "vpn": UNSET,
        "server": UP,
        "api": DOWN,
        "db": DOWN,
        "webapp": DOWN,
    }
    assert result.dependencies["api"].reason == (
        "/health: Malformed response from server: /health is not a valid Health"
    )


async def test_a_200_with_the_wrong_json_is_offline(probes: Scripted) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "ok"}))
    monitor = ConnectivityMonitor(
        SERVER, clock=probes.clock, network=probes.network, tcp=probes.tcp, transport=transport
    )
    async with monitor:
        result = await monitor.check()
    assert not result.online
    assert "not a valid Health" in result.dependencies["webapp"].reason


# -- the real server ------------------------------------------------------------------


@asynccontextmanager
async def listener() -> AsyncIterator[str]:
    """A TCP listener on 127.0.0.1 (a VPN probe target); yields ``HOST:PORT``."""
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_the_real_server_with_a_vpn_target_is_online(live_server: ServerProcess) -> None:
    async with listener() as vpn, ConnectivityMonitor(live_server.url, vpn) as monitor:
        result = await monitor.check()
    assert result.online
    assert states(result) == dict.fromkeys(DEPENDENCIES, UP)


async def test_an_unreachable_vpn_target_is_offline(live_server: ServerProcess) -> None:
    async with ConnectivityMonitor(live_server.url, closed_port()) as monitor:
        result = await monitor.check()
    assert not result.online
    assert result.dependencies["vpn"].state is DOWN
    assert result.dependencies["server"].state is UP


async def test_the_probes_contact_only_the_configured_hosts(
    live_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacted: set[tuple[str, int]] = set()

    class Recording(socket.socket):
        def connect(self, address: tuple[str, int]) -> None:  # type: ignore[override]
            contacted.add(address[:2])
            super().connect(address)

        def connect_ex(self, address: tuple[str, int]) -> int:  # type: ignore[override]
            contacted.add(address[:2])
            return super().connect_ex(address)

    monkeypatch.setattr(socket, "socket", Recording)
    async with listener() as vpn, ConnectivityMonitor(live_server.url, vpn) as monitor:
        assert (await monitor.check()).online
    server = connectivity.server_address(live_server.url)
    assert contacted == {server, parse_address(vpn)}


async def until(monitor: ConnectivityMonitor, mode: Mode, limit: float) -> float:
    """Seconds until ``monitor`` publishes ``mode`` (fails after ``limit`` seconds)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reached = asyncio.Event()
    unsubscribe = monitor.subscribe(lambda c: reached.set() if c.mode is mode else None)
    try:
        if monitor.latest is None or monitor.latest.mode is not mode:
            await asyncio.wait_for(reached.wait(), limit)
    finally:
        unsubscribe()
    return loop.time() - started


# Event-loop scheduling around a round (measured in milliseconds) on top of the bound.
JITTER = 0.25


async def test_a_killed_server_shows_offline_within_the_bound(own_server: ServerProcess) -> None:
    async with ConnectivityMonitor(own_server.url, interval=0.5, timeout=1.0) as monitor:
        loop = asyncio.create_task(monitor.run())
        try:
            await until(monitor, Mode.ONLINE, 10)
            killed = asyncio.create_task(asyncio.to_thread(own_server.kill))
            elapsed = await until(monitor, Mode.OFFLINE, monitor.offline_within + 5)
            await killed
        finally:
            loop.cancel()
    assert elapsed <= monitor.offline_within + JITTER
    assert monitor.latest is not None
    assert {states(monitor.latest)[name] for name in ("server", "api", "db", "webapp")} == {DOWN}
    assert monitor.latest.dependencies["network"].state is UP


async def test_a_hung_server_goes_offline_and_back_online(own_server: ServerProcess) -> None:
    """SIGSTOP: the kernel still accepts TCP connections but /health never answers."""
    assert own_server.process is not None
    pid = own_server.process.pid
    async with ConnectivityMonitor(own_server.url, interval=1.0, timeout=0.5) as monitor:
        loop = asyncio.create_task(monitor.run())
        try:
            await until(monitor, Mode.ONLINE, 10)
            os.kill(pid, signal.SIGSTOP)
            try:
                went_offline = await until(monitor, Mode.OFFLINE, monitor.offline_within + 5)
                hung = monitor.latest
            finally:
                os.kill(pid, signal.SIGCONT)
            came_back = await until(monitor, Mode.ONLINE, monitor.online_within + 5)
        finally:
            loop.cancel()
    assert went_offline <= monitor.offline_within + JITTER
    assert came_back <= monitor.online_within + JITTER
    assert hung is not None and hung.dependencies["server"].state is UP
    assert hung.dependencies["api"].reason == "/health: no answer within 0.5 s"
