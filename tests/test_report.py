"""The drill report from ``muster report`` against the real server: its CSV parses back to
the server's registrations (a formula-like name stays text), its PDF holds about 40 rows a
page and pdftotext finds the totals; only the office may fetch it."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import subprocess
from pathlib import Path

import httpx

from sync_core.server.process import ServerProcess
from sync_core.server.report import COLUMNS, PDF_ROWS_PER_PAGE
from tests.cli import json_report, muster_register, muster_sync, run_muster, two_people

HOSTILE = "=HYPERLINK(1)"


def report(server: ServerProcess, out: Path, fmt: str, user: str = "office", *extra: str) -> dict:
    """``muster report`` in general assembly as ``user``, the password (the demo users' is their
    name) from the environment; its JSON line."""
    env = os.environ | {"MUSTER_PASSWORD": user}
    args = ["report", "--server", server.url, "--user", user, "--mode", "GENASS", "--format", fmt]
    return json_report(run_muster(*args, "--out", str(out), *extra, env=env))


def standing(server: ServerProcess, profile_id: str) -> dict:
    """The server's standing of ``profile_id`` in general assembly (as demo)."""
    with httpx.Client(base_url=server.url) as http:
        token = http.post("/api/v1/sign-in", json={"username": "demo", "password": "demo"}).json()["token"]
        answer = http.get(
            f"/api/v1/musters/GENASS/standing/{profile_id}", headers={"Authorization": f"Bearer {token}"}
        )
        return answer.json()


def test_the_report_reads_back_as_the_servers_registrations(
    own_server: ServerProcess, ship_dir: Path, tmp_path: Path
) -> None:
    (card, profile_id, station), (other_card, other_id, _) = two_people(ship_dir)
    db = tmp_path / "device.duckdb"
    edit = ["admin", "--server", own_server.url, "--user", "office", "--password", "office"]
    assert run_muster(*edit, "set", "reservations", other_id, f"last_name={HOSTILE}").returncode == 0
    assert muster_sync(own_server.url, db)[0] == 0
    assert muster_register(own_server.url, db, card, station)[0] == 0
    assert muster_register(own_server.url, db, other_card, station, "--force")[0] == 0

    out = tmp_path / "drill.csv"
    assert report(own_server, out, "csv")["error"] is None
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    registered = {row["profile_id"]: row for row in rows if row["status"] != "missing"}
    assert set(registered) == {profile_id, other_id}
    for pid, row in registered.items():
        held = standing(own_server, pid)
        assert (row["station"], row["registered_at"], row["registered_by"]) == (
            held["place"], held["registered_at"], held["username"]
        )  # fmt: skip
    assert registered[profile_id]["status"] == "registered"
    assert registered[other_id]["status"] == "registered elsewhere"
    assert registered[other_id]["last_name"] == "'" + HOSTILE
    missing = [row for row in rows if row["status"] == "missing"]
    assert profile_id not in {row["profile_id"] for row in missing}

    pdf = tmp_path / "drill.pdf"
    assert report(own_server, pdf, "pdf")["error"] is None
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+(\d+)$", pages, re.M)[1] == str(math.ceil(len(rows) / PDF_ROWS_PER_PAGE))
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert f"Totals: registered 2 (at another station 1); missing {len(missing)}" in words


def test_a_later_since_leaves_earlier_registrations_out_and_crew_are_refused(
    live_server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "later.csv"
    assert report(live_server, out, "csv", "office", "--since", "2999-01-01")["error"] is None
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows and {row["status"] for row in rows} == {"missing"}
    refused = report(live_server, tmp_path / "crew.csv", "csv", "demo")
    assert "403" in refused["error"]
    assert not (tmp_path / "crew.csv").exists()
