"""``muster admin``: the ship's office edits server data; bad edits get a plain reason.

Refused edits change nothing, so they run against the shared read-only ``live_server``.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import duckdb
import pytest
from PIL import Image

from sync_core.device.client import ServerClient
from sync_core.server.process import ServerProcess
from tests.cli import json_report, run_muster

ON_BOTH_ENGINES = True


def muster_admin(url: str, *args: str, user: str = "office") -> tuple[int, dict]:
    """``muster admin ARGS`` as ``user`` (whose password is the same): its exit code and report."""
    env = {**os.environ, "MUSTER_PASSWORD": user}
    done = run_muster("admin", "--server", url, "--user", user, *args, timeout=60, env=env)
    return done.returncode, json_report(done)


def _image(tmp_path: Path, kind: str) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 120, 40)).save(buffer, format=kind)
    path = tmp_path / f"portrait.{kind.lower()}"
    path.write_bytes(buffer.getvalue())
    return path


def test_office_sets_fields_and_replaces_a_portrait(own_server: ServerProcess, tmp_path: Path) -> None:
    code, first = muster_admin(own_server.url, "set", "lifeboats", "LB01", "capacity=440", "description=Aft")
    assert code == 0 and first["error"] is None
    code, second = muster_admin(
        own_server.url, "set", "reservations", "P0000001", f"picture={_image(tmp_path, 'JPEG')}"
    )
    assert code == 0 and second["cursor"] > first["cursor"]
    code, third = muster_admin(
        own_server.url, "set", "muster_stations", "Z", "name=Spare", "type=Inside", "capacity=10"
    )
    assert code == 0 and third["cursor"] > second["cursor"]
    code, fourth = muster_admin(own_server.url, "delete", "muster_stations", "Z")
    assert code == 0 and fourth["cursor"] > third["cursor"]


def test_a_station_still_named_cannot_be_deleted(live_server: ServerProcess, ship_dir: Path) -> None:
    default = duckdb.execute(
        f"SELECT value FROM '{ship_dir}/parameters.parquet' WHERE name = 'default_muster_station'"
    ).fetchall()[0][0]
    named = duckdb.execute(
        f"SELECT count(*) FROM '{ship_dir}/reservations.parquet' WHERE muster_station = ?", [default]
    ).fetchall()[0][0]
    code, result = muster_admin(live_server.url, "delete", "muster_stations", default)
    assert code == 1
    assert "HTTP 409" in result["error"]
    assert (
        f"still named by {named} profile(s) and general parameter default_muster_station" in result["error"]
    )
    boat, aboard = duckdb.execute(
        f"SELECT lifeboat, count(*) FROM '{ship_dir}/reservations.parquet' "
        "WHERE lifeboat IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1"
    ).fetchall()[0]
    code, result = muster_admin(live_server.url, "delete", "lifeboats", boat)
    assert code == 1 and f"lifeboats {boat!r} is still named by {aboard} profile(s)" in result["error"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("set", "ships", "X", "a=1"), "unknown dataset 'ships'"),
        (("set", "lifeboats", "LB01"), "set needs at least one FIELD=VALUE"),
        (("set", "lifeboats", "LB01", "capacity=lots"), "takes a whole number"),
        (("set", "lifeboats", "LB01", "colour=red"), "has no field(s) ['colour']"),
        (("delete", "lifeboats", "LB99"), "no lifeboats record 'LB99'"),
        (("set", "reservations", "P0000001", "picture=/nonexistent.jpg"), "No such file"),
    ],
)
def test_bad_edits_are_refused_with_a_plain_reason(
    live_server: ServerProcess, args: tuple[str, ...], reason: str
) -> None:
    code, result = muster_admin(live_server.url, *args)
    assert code == 1
    assert reason in result["error"]
    assert "LINE 1" not in result["error"] and "pydantic" not in result["error"]


def test_a_png_is_not_a_portrait(own_server: ServerProcess, tmp_path: Path) -> None:
    code, result = muster_admin(
        own_server.url, "set", "reservations", "P0000001", f"picture={_image(tmp_path, 'PNG')}"
    )
    assert code == 1 and "not JPEG" in result["error"]


def test_crew_may_not_edit(live_server: ServerProcess) -> None:
    code, result = muster_admin(live_server.url, "set", "lifeboats", "LB01", "capacity=1", user="demo")
    assert code == 1 and "HTTP 403" in result["error"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("set", "reservations", "P0000001", "first_name=[1, 2]"), "takes text"),
        (("set", "lifeboats", "LB01", "capacity=1.5"), "takes a whole number"),
        (("set", "lifeboats", "LB01", "capacity=true"), "takes a whole number"),
        (("set", "lifeboats", "LB01", "capacity=10000000000000000000000000000000000000000"), "whole number"),
        (("set", "reservations", "P0000001", "birth_date=2024-01-01T10:00:00"), "YYYY-MM-DD"),
        (("set", "reservations", "P0000001", "profile_id=P0000002"), "cannot be changed"),
        (("set", "reservations", "P0000001", "muster_station=NOPE"), "no muster_stations record 'NOPE'"),
        (("set", "reservations", "NEW1", "first_name=Ann"), "needs a value for"),
        (("set", "users", "evil", "display_name=x"), "needs a value for"),
        (("set", "reservations", "P0000001", f"first_name={'x' * 501}"), "at most 500"),
        (
            ("set", "parameters", "retention_days", "value=soon"),
            "parameter retention_days takes a whole number",
        ),
        (("set", "parameters", "retention_days", "value=1.5"), "takes a whole number"),
        (("set", "parameters", "drill_for_today_only", "value=3"), "takes true or false"),
    ],
)
def test_values_must_fit_their_fields(live_server: ServerProcess, args: tuple[str, ...], reason: str) -> None:
    code, result = muster_admin(live_server.url, *args)
    assert code == 1 and reason in result["error"]


def test_a_truncated_or_shared_jpeg_is_refused(own_server: ServerProcess, tmp_path: Path) -> None:
    jpeg = _image(tmp_path, "JPEG")
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    code, result = muster_admin(own_server.url, "set", "reservations", "P0000001", f"picture={truncated}")
    assert code == 1 and "not a readable JPEG" in result["error"]
    code, first = muster_admin(own_server.url, "set", "reservations", "P0000004", f"picture={jpeg}")
    assert code == 0
    again = muster_admin(own_server.url, "set", "reservations", "P0000004", f"picture={jpeg}")
    assert again == (0, first)  # the same portrait again: accepted, nothing changed
    code, result = muster_admin(own_server.url, "set", "reservations", "P0000005", f"picture={jpeg}")
    assert code == 1 and "already the portrait of profile 'P0000004'" in result["error"]


def test_a_parameter_value_takes_its_declared_type(own_server: ServerProcess) -> None:
    """``value=3`` arrives as a number (the command line reads JSON); each parameter keeps
    it as the text of its declared type."""
    edits = {"assembly_handling_mode": "3", "safety_mode": "3", "drill_for_today_only": "FALSE"}
    for name, value in edits.items():
        code, result = muster_admin(own_server.url, "set", "parameters", name, f"value={value}")
        assert code == 0 and result["error"] is None, result

    async def stored() -> list[str | None]:
        async with ServerClient(own_server.url) as client:
            await client.sign_in("demo", "demo")
            return [await client.parameter(name) for name in edits]

    assert asyncio.run(stored()) == ["3", "3", "false"]
