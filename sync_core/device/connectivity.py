"""Online / offline: the device probes what mustering online depends on (docs/architecture.md,
'Online and offline'; seed: "device connection, server connection, VPN connection, API services, DB
server, and Webapp service").

Dependencies, by name:

- ``network``: the device has a route to the server's host (a UDP socket ``connect()``,
  which sends no packet; the name is resolved as for any connection). No host outside the
  configured ones is contacted.
- ``vpn``: a TCP connect to a configurable probe target ``HOST:PORT``; with none configured
  it is ``not configured`` and does not count.
- ``server``: a TCP connect to the server's host and port.
- ``api``, ``db``, ``webapp``: the server's own components, from the JSON body of
  ``GET /health`` (docs/architecture.md, 'Server health'). An HTML page (a captive portal), a body of
  the wrong shape, an error status or no answer makes all three ``down``.

Each round also reads the ship's safety mode from ``/health`` (set by the office; None when
none is set or ``/health`` did not answer), so an online handheld follows it.

The device is **online** when every configured dependency is up (``vpn`` may be ``not
configured``; with no server address the device is offline).

Hysteresis: every round probes all dependencies at once, each within ``timeout`` seconds of
the monitor's clock (default 2; this bound, not the HTTP client's longer timeouts, ends a
hung ``/health``, so its reason stays "no answer within 2 s"). The first round sets the mode;
after it, the device goes offline only after :data:`OFFLINE_AFTER_ROUNDS` (2) consecutive
failed rounds, and back online after one good round (the dependencies always show the
latest round). Rounds start every ``interval`` seconds (default 2; start to start, never
faster than a round takes).

Bounds, worst case, plus event-loop scheduling (milliseconds): a real outage shows as
offline within ``2 * max(interval, timeout) + timeout`` seconds (6 s by default), a recovery
as online within ``max(interval, timeout) + timeout`` (4 s); see
:attr:`ConnectivityMonitor.offline_within`. A refused connection fails at once, so a
stopped server typically shows within ``2 * interval``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from types import TracebackType
from typing import Final, TypeVar

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict

from sync_core.clock import Clock, SystemClock, within
from sync_core.device.client import ServerClient
from sync_core.errors import SyncError
from sync_core.protocol import ComponentState, Health, SafetyMode

# The dependencies in the order the UI and ``muster status`` list them.
DEPENDENCIES: Final = ("network", "vpn", "server", "api", "db", "webapp")
HEALTH_PARTS: Final = ("api", "db", "webapp")
OFFLINE_AFTER_ROUNDS: Final = 2
DEFAULT_INTERVAL = 2.0
DEFAULT_TIMEOUT = 2.0
# Where ``muster status`` (and later the app) reads the VPN probe target, ``HOST:PORT``.
VPN_TARGET_ENV: Final = "MUSTER_VPN_TARGET"
NEVER_SYNCED: Final = "never synced"

T = TypeVar("T")
# A reachability probe: returns when ``(host, port)`` is reachable, raises OSError (whose
# text is the reason) when not.
Reach = Callable[[str, int], Awaitable[None]]
HealthProbe = Callable[[], Awaitable[Health]]


class DependencyState(StrEnum):
    """The state of one dependency."""

    UP = "up"
    DOWN = "down"
    NOT_CONFIGURED = "not configured"


class Mode(StrEnum):
    """The device's mode (the product's online / offline mode)."""

    ONLINE = "online"
    OFFLINE = "offline"


class Dependency(BaseModel):
    """One dependency's state; ``reason`` says why it is not up (None when up)."""

    model_config = ConfigDict(frozen=True)

    state: DependencyState
    reason: str | None = None


class Connectivity(BaseModel):
    """What a round of probes found: the (debounced) ``mode``, each dependency's latest state
    by name (see :data:`DEPENDENCIES`), when the round ended (device clock, UTC), and the
    ship's safety mode from ``/health``."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    dependencies: dict[str, Dependency]
    checked_at: AwareDatetime
    ship_mode: SafetyMode | None = None

    @property
    def online(self) -> bool:
        """True in online mode."""
        return self.mode is Mode.ONLINE

    def to_cli_json(self) -> dict[str, object]:
        """``mode`` and ``dependencies`` (name -> ``{"state", "reason"}``) of ``muster status``."""
        return self.model_dump(mode="json", include={"mode", "dependencies"})


Subscriber = Callable[[Connectivity], None]
_UP = Dependency(state=DependencyState.UP)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``; ValueError when it is not."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def server_address(server_url: str) -> tuple[str, int]:
    """The host and port (default 80 / 443) of a server address such as ``http://10.0.0.5:8000``."""
    url = httpx.URL(server_url)
    return url.host, url.port or (443 if url.scheme == "https" else 80)


async def route_exists(host: str, port: int) -> None:
    """The ``network`` probe: connects a UDP socket to ``host`` (no packet is sent), which
    fails when the device has no route there. Raises OSError."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    failure = OSError(f"no address for {host}")
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            try:
                sock.connect(address)
                return
            except OSError as exc:
                failure = exc
    raise failure


async def tcp_connects(host: str, port: int) -> None:
    """The ``server`` and ``vpn`` probe: opens and closes a TCP connection. Raises OSError."""
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _vpn_setting(target: str | None) -> tuple[str, int] | Dependency:
    """The VPN probe's address, or its fixed state: not configured, or down for a bad target."""
    if not target:
        return Dependency(state=DependencyState.NOT_CONFIGURED, reason="no VPN probe target configured")
    try:
        return parse_address(target)
    except ValueError as exc:
        return _down(f"VPN probe target {exc}")


def _down(reason: str) -> Dependency:
    return Dependency(state=DependencyState.DOWN, reason=reason)


def _component(name: str, state: ComponentState) -> Dependency:
    return _UP if state is ComponentState.UP else _down(f"the server reports {name} down")


def _mode(previous: Connectivity | None, healthy: bool, failed_rounds: int) -> Mode:
    """Online after a good round; offline after a failed first round, after
    ``OFFLINE_AFTER_ROUNDS`` failed rounds in a row, or while already offline."""
    if healthy:
        return Mode.ONLINE
    if previous is None or not previous.online or failed_rounds >= OFFLINE_AFTER_ROUNDS:
        return Mode.OFFLINE
    return Mode.ONLINE


def _healthy(dependencies: Mapping[str, Dependency]) -> bool:
    return all(
        dep.state is DependencyState.UP or (name == "vpn" and dep.state is DependencyState.NOT_CONFIGURED)
        for name, dep in dependencies.items()
    )


class ConnectivityMonitor:
    """Probes the dependencies of the server at ``server_url`` (None before the first sync:
    offline, the server ``not configured``) and of the VPN probe target ``vpn_target``
    (``HOST:PORT`` or None; an unparsable one is ``down``). See the module docstring for
    the rules and bounds.

    ``interval`` and ``timeout`` are in seconds of ``clock`` (a FrozenClock lets tests run
    rounds without sleeping). ``network`` and ``tcp`` replace the reachability probes,
    ``health`` the ``GET /health`` call, whose ``transport`` may also be injected. Use as
    an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        server_url: str | None,
        vpn_target: str | None = None,
        *,
        clock: Clock | None = None,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        network: Reach = route_exists,
        tcp: Reach = tcp_connects,
        health: HealthProbe | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.interval = interval
        self.timeout = timeout
        self._server = server_address(server_url) if server_url else None
        self._network = network
        self._tcp = tcp
        self._vpn_target = _vpn_setting(vpn_target)
        self._client: ServerClient | None = None
        if server_url and health is None:
            self._client = ServerClient(server_url, transport=transport)
            health = self._client.health
        self._health = health
        self._subscribers: list[Subscriber] = []
        self._latest: Connectivity | None = None
        self._failed_rounds = 0
        self._ship_mode: SafetyMode | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ConnectivityMonitor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client of the health probe."""
        if self._client is not None:
            await self._client.aclose()

    @property
    def latest(self) -> Connectivity | None:
        """The last round's result, or None before the first round."""
        return self._latest

    @property
    def offline_within(self) -> float:
        """Seconds within which an outage that starts while online shows as offline (worst case)."""
        return OFFLINE_AFTER_ROUNDS * max(self.interval, self.timeout) + self.timeout

    @property
    def online_within(self) -> float:
        """Seconds within which a recovery shows as online (worst case)."""
        return max(self.interval, self.timeout) + self.timeout

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` whenever the mode or any dependency (state or reason) changes,
        and after the first round; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def run(self) -> None:
        """Run a round every ``interval`` seconds, start to start; never returns (cancel it)."""
        while True:
            started = self.clock.monotonic()
            await self.check()
            await self.clock.sleep(max(0.0, self.interval - (self.clock.monotonic() - started)))

    async def check(self) -> Connectivity:
        """Run one round now (after any round under way) and return its result; it ends
        within ``timeout`` seconds and never raises for a failed probe."""
        async with self._lock:
            previous = self._latest
            dependencies = await self._probe_all()
            healthy = _healthy(dependencies)
            self._failed_rounds = 0 if healthy else self._failed_rounds + 1
            mode = _mode(previous, healthy, self._failed_rounds)
            ship_mode = self._ship_mode
            latest = Connectivity(
                mode=mode, dependencies=dependencies, checked_at=self.clock.now(), ship_mode=ship_mode
            )
            self._latest = latest
        found = (mode, dependencies, ship_mode)
        if previous is None or (previous.mode, previous.dependencies, previous.ship_mode) != found:
            for callback in list(self._subscribers):
                callback(latest)
        return latest

    async def _probe_all(self) -> dict[str, Dependency]:
        if self._server is None:
            unset = Dependency(state=DependencyState.NOT_CONFIGURED, reason=NEVER_SYNCED)
            return dict.fromkeys(DEPENDENCIES, unset) | {"vpn": await self._vpn()}
        host, port = self._server
        network, vpn, server, parts = await asyncio.gather(
            self._reach(self._network, host, port),
            self._vpn(),
            self._reach(self._tcp, host, port),
            self._parts(),
        )
        return {"network": network, "vpn": vpn, "server": server, **parts}

    async def _vpn(self) -> Dependency:
        if isinstance(self._vpn_target, Dependency):
            return self._vpn_target
        return await self._reach(self._tcp, *self._vpn_target)

    async def _reach(self, probe: Reach, host: str, port: int) -> Dependency:
        try:
            await self._within(probe(host, port))
        except OSError as exc:  # TimeoutError is an OSError
            return _down(f"{host}:{port}: {_why(exc)}")
        return _UP

    async def _parts(self) -> dict[str, Dependency]:
        """``api``, ``db`` and ``webapp`` from the server's ``/health``."""
        assert self._health is not None
        self._ship_mode = None
        try:
            health = await self._within(self._health())
        except (SyncError, OSError) as exc:
            return dict.fromkeys(HEALTH_PARTS, _down(f"/health: {_why(exc)}"))
        self._ship_mode = health.safety_mode
        return {name: _component(name, getattr(health, name)) for name in HEALTH_PARTS}

    async def _within(self, probe: Awaitable[T]) -> T:
        """``probe``'s result, or TimeoutError once ``timeout`` seconds pass on the clock."""
        return await within(self.clock, self.timeout, probe)
