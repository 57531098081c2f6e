"""The ship-data generator: same seed same bytes, the dataset contract, the data's own rules."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import re
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fixtures.ship import fixture_passwords, generate_ship
from sync_core.passwords import HASHER
from sync_core.protocol import DATASET_COLUMNS, DATASETS

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "DATE": pa.date32(),
    "BLOB": pa.binary(),
}
GENERATE_SMALL_1 = """
import pathlib, sys
from fixtures.ship import generate_ship
generate_ship("small", 1, pathlib.Path(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def ship(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("small")
    return out, generate_ship("small", 1, out)


@pytest.fixture(scope="module")
def data(ship: tuple[pathlib.Path, dict[str, int]]) -> dict[str, list[dict[str, Any]]]:
    out, _ = ship
    return {key: pq.read_table(out / f"{key}.parquet").to_pylist() for key in DATASETS}


def _files(out: pathlib.Path) -> dict[str, bytes]:
    return {key: (out / f"{key}.parquet").read_bytes() for key in DATASETS}


def test_same_seed_gives_the_same_bytes_in_another_process(ship, tmp_path):
    out, _ = ship
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-c", GENERATE_SMALL_1, str(tmp_path)]
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    assert _files(tmp_path) == _files(out)


def test_another_seed_gives_other_data(ship, tmp_path):
    out, _ = ship
    generate_ship("small", 2, tmp_path)
    ours, theirs = _files(out), _files(tmp_path)
    assert all(ours[key] != theirs[key] for key in ("users", "reservations", "pictures"))


def test_unknown_preset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        generate_ship("titanic", 1, tmp_path)
    assert not list(tmp_path.iterdir())


def test_files_have_exactly_the_protocol_columns_and_types(ship, data):
    out, counts = ship
    for key in DATASETS:
        schema = pq.read_schema(out / f"{key}.parquet")
        expected = [(name, ARROW_TYPES[kind]) for name, kind in DATASET_COLUMNS[key]]
        assert [(field.name, field.type) for field in schema] == expected, key
    assert counts == {key: len(rows) for key, rows in data.items()}
    assert counts["reservations"] == counts["pictures"] >= 280


def test_ids_are_unique_and_present(data):
    for key in DATASETS:
        ids = [row[DATASET_COLUMNS[key][0][0]] for row in data[key]]
        assert None not in ids and len(set(ids)) == len(ids), key


def test_muster_stations_hold_their_people(data):
    stations = {row["code"]: row for row in data["muster_stations"]}
    assert all(len(code) <= 6 for code in stations)
    assert {row["type"] for row in stations.values()} == {"Muster", "Emergency", "Both"}
    for code, station in stations.items():
        assigned = sum(row["muster_station"] == code for row in data["reservations"])
        assert 0 < assigned <= station["capacity"], code
    assert all(row["muster_station"] in stations for row in data["reservations"])


def test_lifeboats_follow_the_side_rule_and_hold_their_people(data):
    boats = {row["code"]: row for row in data["lifeboats"]}
    for code, boat in boats.items():
        match = re.fullmatch(r"LB(\d{2,})", code)
        assert match, code
        assert boat["side"] == ("Starboard" if int(match[1]) % 2 else "Port"), code
        assigned = sum(row["lifeboat"] == code for row in data["reservations"])
        assert assigned <= boat["capacity"], code
    assert {row["type"] for row in boats.values()} == {"LB", "LR", "T"}
    assert all(row["lifeboat"] in boats for row in data["reservations"])


def test_parameters_name_an_existing_station(data):
    parameters = {row["name"]: row["value"] for row in data["parameters"]}
    assert parameters["delta_sync_interval_minutes"] == "30"
    assert parameters["retention_days"] == "10"
    assert parameters["safety_mode"] in {"EMERCY", "GENASS", "ASHSHP"}
    assert parameters["assembly_handling_mode"] in {"1", "2", "3"}
    assert parameters["default_muster_station"] in {row["code"] for row in data["muster_stations"]}
    assert set(parameters) >= {
        "session_timeout_minutes",
        "max_failed_sign_ins",
        "lockout_minutes",
        "child_max_age",
        "drill_for_today_only",
    }


def test_reservations_are_complete(data):
    rows = data["reservations"]
    cards = [row["board_card_number"] for row in rows]
    assert all(card and card.isdigit() for card in cards) and len(set(cards)) == len(cards)
    types = {row["profile_type"] for row in rows}
    assert types == {"Guest", "Crew", "Visitor", "Resident", "Staff"}
    for row in rows:
        crew = row["profile_type"] == "Crew"
        assert (row["manning_number"] is not None) == crew, row["profile_id"]
        assert row["embark_date"] <= row["debark_date"]
        assert re.fullmatch(r"\*{6}\d{4}", row["passport_masked"])
    guests = [row for row in rows if row["profile_type"] == "Guest"]
    assert all(row["booking_number"] and row["cabin"] for row in guests)
    assert any((row["embark_date"] - row["birth_date"]).days < 12 * 365 for row in guests)


def test_names_exercise_awkward_text(data):
    names = [f"{row['first_name']} {row['last_name']}" for row in data["reservations"]]
    assert any("'" in name for name in names)
    assert any("-" in name for name in names)
    assert any(re.search(r"[\u4e00-\u9fff]", name) for name in names)  # CJK
    assert any(re.search(r"[\u0600-\u06ff]", name) for name in names)  # Arabic
    assert any(re.search(r"[À-ÿ]", name) for name in names)  # Latin diacritics
    assert any(len(name) > 60 for name in names)
    assert any("[bold]" in name for name in names) and any("[/x]" in name for name in names)
    assert not any(re.search(r"[\x00-\x1f\x7f]", name) for name in names)


def test_every_profile_has_its_own_portrait(data):
    pictures = {row["profile_id"]: row for row in data["pictures"]}
    assert len({row["sha256"] for row in pictures.values()}) == len(pictures)
    for profile in data["reservations"]:
        picture = pictures[profile["profile_id"]]
        sha256 = hashlib.sha256(picture["jpeg"]).hexdigest()
        assert picture["sha256"] == profile["picture_sha256"] == sha256
        with Image.open(io.BytesIO(picture["jpeg"])) as image:
            assert image.format == "JPEG" and image.size == (96, 96)


def test_fixture_users_sign_in(data):
    users = {row["username"]: row for row in data["users"]}
    passwords = fixture_passwords("small", 1)
    assert list(users) == list(passwords)
    for name, role in (("demo", "crew"), ("office", "office"), ("crew01", "crew")):
        assert users[name]["role"] == role
        assert HASHER.verify(users[name]["password_hash"], passwords[name])
        assert not HASHER.check_needs_rehash(users[name]["password_hash"])
    assert passwords["demo"] == "demo" and passwords["office"] == "office"
