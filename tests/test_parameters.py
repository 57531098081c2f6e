"""General parameters read as whole numbers (DeviceStore.whole_parameter): whatever the office
typed, the device gets a number it can make a time span of, and says in the log when it did
not take the value as typed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sync_core.device import DeviceStore
from sync_core.muster import WHOLE_PARAMETER_MAX

DEFAULT = 30


@pytest.mark.parametrize(
    ("typed", "taken", "logged"),
    [
        ("5", 5, False),
        (" 0007 ", 7, False),
        ("\u0663", 3, False),  # ARABIC-INDIC DIGIT THREE is a decimal digit
        ("0", DEFAULT, True),
        ("-5", DEFAULT, True),
        ("every 5", DEFAULT, True),
        ("", DEFAULT, True),
        (str(WHOLE_PARAMETER_MAX), WHOLE_PARAMETER_MAX, False),
        (str(WHOLE_PARAMETER_MAX + 1), WHOLE_PARAMETER_MAX, True),
        ("10000000000000", WHOLE_PARAMETER_MAX, True),
        ("9" * 5000, WHOLE_PARAMETER_MAX, True),  # int() refuses this many digits
        ("0" * 20 + "12", 12, False),
    ],
)
def test_whole_parameter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, typed: str, taken: int, logged: bool
) -> None:
    store = DeviceStore(tmp_path / "device.duckdb")
    try:
        with store.db.cursor() as cur:
            cur.execute("INSERT INTO parameters VALUES ('lockout_minutes', ?, 'int')", [typed])
        with caplog.at_level(logging.WARNING):
            assert store.whole_parameter("lockout_minutes", DEFAULT) == taken
        assert any("lockout_minutes" in r.getMessage() for r in caplog.records) is logged
    finally:
        store.close()


def test_an_unsynced_parameter_is_the_default_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DeviceStore(tmp_path / "device.duckdb")
    try:
        with caplog.at_level(logging.WARNING):
            assert store.whole_parameter("lockout_minutes", DEFAULT) == DEFAULT
        assert not caplog.records
    finally:
        store.close()
