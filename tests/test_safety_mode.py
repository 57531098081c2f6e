"""The ship's safety mode on the server: kept across a restart, latest start or end wins; a
newer server's unknown mode in ``/health`` is not a reason to call the server down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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
