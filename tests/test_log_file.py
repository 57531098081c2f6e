"""While the app runs, log records go to the store's log file, never onto the terminal that
Textual draws (a warning on stderr garbled the screen)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from muster_tui.log_file import BACKUPS, MAX_BYTES, log_path, logging_to


def test_records_go_to_the_file_and_not_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    terminal = logging.StreamHandler(sys.stderr)  # what `muster`'s basicConfig installs
    root.addHandler(terminal)
    try:
        path = log_path(tmp_path / "device.duckdb")
        with logging_to(path):
            logging.getLogger("sync_core.device.upload").warning("upload failed: [b]x[/b] \x1b[2J")
        after = root.handlers[:]
    finally:
        root.removeHandler(terminal)
    assert path == tmp_path / "device.log"
    assert "WARNING sync_core.device.upload: upload failed: [b]x[/b] \x1b[2J" in path.read_text("utf-8")
    assert capfd.readouterr().err == ""
    assert terminal in after  # restored once the app ends


def test_the_log_is_rotated_so_it_cannot_fill_the_handheld(tmp_path: Path) -> None:
    path = log_path(tmp_path / "device.duckdb")
    with logging_to(path):
        for _ in range(3 * BACKUPS * MAX_BYTES // 1000):
            logging.getLogger("sync_core.device.engine").warning("x" * 1000)
    logs = sorted(tmp_path.glob("device.log*"))
    assert [p.name for p in logs] == ["device.log"] + [f"device.log.{n}" for n in range(1, BACKUPS + 1)]
    assert all(p.stat().st_size <= MAX_BYTES for p in logs)
