"""The server as a child process stops with its parent (``muster demo`` killed with -9)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


def test_server_stops_when_its_parent_is_killed(ship_dir: Path, tmp_path: Path) -> None:
    script = (
        "import time\n"
        "from pathlib import Path\n"
        "from sync_core.server.process import ServerProcess\n"
        f"server = ServerProcess(Path({str(ship_dir)!r}), Path({str(tmp_path / 's.duckdb')!r}), "
        f"Path({str(tmp_path / 's.log')!r}))\n"
        "server.start()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    assert _alive(server_pid)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 15
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(server_pid)
