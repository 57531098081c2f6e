"""The ship's safety mode: kept by the server across a restart (the latest start or end
wins); read by the device's connectivity monitor from ``/health``, where a newer server's
unknown mode is no reason to call the server down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync_core.clock import FrozenClock
from sync_core.device.connectivity import Connectivity, ConnectivityMonitor
from sync_core.duck import Database
from sync_core.protocol import Health, SafetyMode
from sync_core.server.safety_mode import NONE_SET, ShipMode

AT = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)


def test_the_latest_start_or_end_is_kept_across_a_restart(tmp_path: Path) -> None:
    db = Database(tmp_path / "server.duckdb")
    ship = ShipMode(db)
    assert ship.current() == NONE_SET
    ship.set(SafetyMode.EMERCY, "office", AT)
    ship.set(SafetyMode.ASHSHP, "captain", AT + timedelta(minutes=5))
    db.close()
    reopened = Database(tmp_path / "server.duckdb")
    again = ShipMode(reopened)
    state = again.current()
    later = AT + timedelta(minutes=5)
    assert (state.mode, state.since, state.set_by) == (SafetyMode.ASHSHP, later, "captain")
    again.set(None, "office", AT + timedelta(minutes=30))
    assert again.current().mode is None and again.current().since == AT + timedelta(minutes=30)
    reopened.close()


def test_an_unknown_mode_in_health_reads_as_none() -> None:
    body = {"api": "up", "db": "up", "webapp": "up", "server_id": "s", "safety_mode": "FLOOD"}
    assert Health.model_validate(body).safety_mode is None
    assert Health.model_validate(body | {"safety_mode": "GENASS"}).safety_mode is SafetyMode.GENASS


async def test_the_monitor_passes_the_ships_mode_on_and_tells_when_it_changes() -> None:
    answers = [SafetyMode.GENASS, SafetyMode.GENASS, None]

    async def health() -> Health:
        mode = answers.pop(0)
        return Health(api="up", db="up", webapp="up", server_id="s", safety_mode=mode)

    async def reachable(host: str, port: int) -> None:
        return None

    seen: list[Connectivity] = []
    clock = FrozenClock(AT)
    monitor = ConnectivityMonitor(
        "http://ship.example:8000", clock=clock, network=reachable, tcp=reachable, health=health
    )
    monitor.subscribe(seen.append)
    for _ in range(3):
        await monitor.check()
    assert [c.ship_mode for c in seen] == [SafetyMode.GENASS, None]  # the same mode twice: told once
    await monitor.aclose()
