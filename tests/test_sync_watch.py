"""`muster sync --watch` (sync_forever): one report per sync run, not per upload status; a
real process that rides out a server down at start, killed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, SyncStatus
from sync_core.device.headless import sync_forever
from sync_core.protocol import RecordChange, SyncState
from sync_core.server.process import ServerProcess

from .cli import closed_port_url
from .tui.helpers import SYNCED_AT


async def test_watch_reports_once_per_run(live_server: ServerProcess, device_store_path: Path) -> None:
    store = DeviceStore(device_store_path)
    reports: list[SyncStatus] = []
    clock = FrozenClock(SYNCED_AT)  # stands still: the delta timer's next run is not due
    watching = asyncio.create_task(
        sync_forever(live_server.url, store, "demo", "demo", reports.append, clock=clock)
    )
    async with asyncio.timeout(30):
        while not reports:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the uploader starts and publishes meanwhile
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    store.close()
    assert [(report.status, report.kind) for report in reports] == [(SyncState.SUCCESS, "full")]


class Reports:
    """The JSON lines a ``muster sync --watch`` child prints, read by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[dict] = queue.Queue()
        assert process.stdout is not None
        self.stdout = process.stdout
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put(json.loads(line))

    def close(self) -> None:
        """After the process ended: the last lines read, the pipe closed."""
        self.reader.join(5)
        self.stdout.close()

    def until(self, wanted: Callable[[dict], bool], timeout: float = 60) -> dict:
        """The first report that ``wanted`` accepts (the others are passed over)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if wanted(report):
                return report


def _succeeded(report: dict) -> bool:
    return report["status"] == "Success"


def test_watch_rides_out_a_server_that_is_down_killed_and_restarted(
    ship_dir: Path, tmp_path: Path, device_store_path: Path
) -> None:
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    server = ServerProcess(
        ship_dir,
        tmp_path / "server.duckdb",
        tmp_path / "server.log",
        port=port,
        options=["--token-lifetime", "5"],
    )
    watch = subprocess.Popen(
        [sys.executable, "-m", "muster_tui", "sync", "--watch", "--server", url,
         "--db", str(device_store_path), "--user", "demo", "--password", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    reports = Reports(watch)
    try:
        down = reports.until(lambda report: True)
        assert down["status"] == "Failed" and "unreachable" in down["error"]
        server.start()
        first = reports.until(_succeeded)
        assert first["kind"] == "full"
        edited = asyncio.run(_office_edit(url))
        server.kill()
        time.sleep(7)  # past the monitor's offline bound, and the 5 s tokens expire
        server.start()
        caught_up = reports.until(lambda report: _succeeded(report) and report["cursor"] == edited)
        assert caught_up["kind"] == "delta" and watch.poll() is None
        started = time.monotonic()
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        reports.close()
        server.stop()
    store = DeviceStore(device_store_path)
    assert store.sync_point() is not None and store.sync_point().cursor == edited  # type: ignore[union-attr]
    store.close()


async def _office_edit(url: str) -> int:
    """One office edit on the server at ``url``; the cursor after it."""
    async with ServerClient(url) as office:
        await office.sign_in("office", "office")
        change = RecordChange(key="lifeboats", id="LB01", op="set", fields={"description": "Aft"})
        result = await office.post_changes([change])
    return result.cursor
