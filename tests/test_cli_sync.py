"""``muster sync``: one JSON object on stdout, exit 1 when any status is Failed
(docs/architecture.md, 'Command line')."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sync_core.device import DeviceStore
from sync_core.server.process import ServerProcess
from tests.cli import closed_port_url, muster_sync


def test_sync_succeeds_and_counts(live_server: ServerProcess, device_store_path: Path) -> None:
    code, report = muster_sync(live_server.url, device_store_path)
    assert code == 0, report
    assert report["status"] == "Success" and report["kind"] == "full"
    assert all(row["count"] > 0 and row["status"] == "Success" for row in report["datasets"].values())
    assert report["error"] is None


def test_on_a_terminal_progress_goes_to_stderr_and_json_to_stdout(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    """stderr a terminal (a pty): the full sync's progress lines, rewritten in place and
    ended with a newline; stdout still one JSON object."""
    reader, writer = pty.openpty()
    chunks: list[bytes] = []  # read as they come: a full pty would hold the child up
    reading = threading.Thread(target=lambda: chunks.extend(iter(lambda: _read(reader), b"")))
    reading.start()
    args = ["sync", "--server", live_server.url, "--db", str(device_store_path), "--user", "demo"]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "muster_tui", *args, "--password", "demo"],
            stdout=subprocess.PIPE,
            stderr=writer,
            text=True,
            timeout=90,
        )
    finally:
        os.close(writer)  # the reader sees the end
        reading.join()
        os.close(reader)
    shown = b"".join(chunks)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "Success"
    lines = shown.decode().split("\r\x1b[K")
    assert lines[1].startswith("Full sync: Records 0 of ")
    assert lines[-1].startswith("Full sync: Records ") and " · Portraits " in lines[-1]
    assert shown.endswith(b"\r\n")  # the line ended (the pty turns the newline into CR LF)


def _read(fd: int) -> bytes:
    """What the pty holds, b"" at its end (Linux reports the closed far side as EIO)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def test_second_sync_is_a_delta_unless_full_is_forced(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    assert muster_sync(live_server.url, device_store_path)[1]["kind"] == "full"
    code, report = muster_sync(live_server.url, device_store_path)
    assert code == 0 and report["kind"] == "delta"
    assert all(row["changes"] == 0 and row["count"] > 0 for row in report["datasets"].values())
    code, report = muster_sync(live_server.url, device_store_path, "demo", "--full")
    assert code == 0 and report["kind"] == "full"


def test_sync_with_server_down_exits_1(device_store_path: Path) -> None:
    url = closed_port_url()
    code, report = muster_sync(url, device_store_path)
    assert code == 1
    assert report["status"] == "Failed"
    assert url in report["error"]


def test_sync_with_wrong_password_exits_1(live_server: ServerProcess, device_store_path: Path) -> None:
    code, report = muster_sync(live_server.url, device_store_path, password="wrong")
    assert code == 1
    assert report["status"] == "Failed"
    assert report["error"] == "Invalid login, please try again"


def test_sync_while_the_app_holds_the_store_exits_1(
    live_server: ServerProcess, device_store_path: Path
) -> None:
    store = DeviceStore(device_store_path)
    try:
        code, report = muster_sync(live_server.url, device_store_path)
    finally:
        store.close()
    assert code == 1
    assert "in use by the running app" in report["error"]


def test_a_store_that_is_not_a_duckdb_file_is_a_failed_run(
    live_server: ServerProcess, tmp_path: Path
) -> None:
    bogus = tmp_path / "device.duckdb"
    bogus.write_bytes(b"this is not a database" * 100)
    code, report = muster_sync(live_server.url, bogus)
    assert code == 1 and "cannot be opened" in report["error"]


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "ftp://127.0.0.1"])
def test_a_bad_server_address_is_a_failed_run(url: str, device_store_path: Path) -> None:
    code, report = muster_sync(url, device_store_path)
    assert code == 1
    assert "address" in report["error"] or "port" in report["error"]
