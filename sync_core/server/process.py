"""The Mustering server as a child process: for ``muster demo``, the tests and the benchmark.

Starts ``muster server --port 0`` with this interpreter, waits for its ready line (it
prints ``{"url", "server_id"}`` once listening), and stops it with SIGTERM (then SIGKILL
after a grace period) on exit. The child also stops by itself if this process dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from sync_core.errors import ServerStartError
from sync_core.files import DIRECTORY_MODE, FILE_MODE


class ServerProcess:
    """``muster server --data DATA --db DB`` on 127.0.0.1 and ``port`` (0: a free one); DB
    is a DuckDB file or a ``postgresql://`` URL.

    ``start_timeout`` bounds the wait for the ready line in seconds (a new DB imports
    first). ``log`` receives the server's stderr. ``options``: more ``muster server`` options
    (e.g. ``--sign-in-queue 4``). After :meth:`start`, ``url`` and
    ``server_id`` are set.
    """

    def __init__(
        self,
        data_dir: Path,
        db_path: Path | str,
        log: Path,
        start_timeout: float = 120.0,
        port: int = 0,
        options: Sequence[str] = (),
    ) -> None:
        self.args = [
            sys.executable, "-m", "muster_tui", "server",
            "--data", str(data_dir), "--db", str(db_path), "--port", str(port), "--exit-with-parent",
            *options,
        ]  # fmt: skip
        self.db = str(db_path)
        self.log = log
        self.start_timeout = start_timeout
        self.url = ""
        self.server_id = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the server; return its base URL. Raises ServerStartError."""
        self.log.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        with open(os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE), "a") as log:
            self.process = subprocess.Popen(
                self.args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True
            )
        line = self._ready_line()
        if not line:
            self.stop()
            raise ServerStartError(f"the server did not start; see {self.log}")
        ready = json.loads(line)
        self.url, self.server_id = ready["url"], ready["server_id"]
        return self.url

    def _ready_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.start_timeout)
        return lines[0].strip() if lines else ""

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._reap()

    def kill(self) -> None:
        """SIGKILL at once: a server that dies (fault injection)."""
        if self.process is not None:
            self.process.kill()
            self._reap()

    def _reap(self) -> int:
        assert self.process is not None
        code = self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
