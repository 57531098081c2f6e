"""A new server store on either engine for a server benchmark, its server, and PostgreSQL's
memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fixtures.postgres import Cluster
from sync_core.server.process import ServerProcess

ENGINES = ("duckdb", "postgresql")


def store_server(ship: Path, db: str, work: Path, start_timeout: float = 120.0) -> ServerProcess:
    """A server of ``ship`` over the store ``db`` made by :func:`new_store` in ``work``: its
    log and portrait files in ``work`` too (a PostgreSQL store has no file to put them beside)."""
    portraits = ("--portraits", str(work / "portraits"))
    return ServerProcess(ship, db, work / "server.log", start_timeout=start_timeout, options=portraits)


@contextmanager
def new_store(engine: str) -> Iterator[tuple[Path, str, Cluster | None]]:
    """``(work, db, cluster)``: a new scratch directory ``work``, removed on exit, and a new
    store in it: a DuckDB file (``cluster`` None), or a database on a throwaway PostgreSQL
    cluster of its own, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="muster-bench-") as scratch:
        work = Path(scratch)
        if engine == "duckdb":
            yield work, str(work / "server.duckdb"), None
            return
        cluster = Cluster()
        try:
            cluster.start()
            yield work, cluster.new_database(), cluster
        finally:
            cluster.stop()


def postgres_pss_mb(cluster: Cluster) -> float:
    """The memory of ``cluster``'s processes now, in MB to 0.1: the sum of their
    proportional set sizes (``Pss`` in ``/proc/PID/smaps_rollup``), so the shared buffers
    every backend maps count once in all, not once per backend as a sum of their RSS
    would."""
    total_kb = 0
    for proc in _cluster_processes(cluster):
        try:
            rollup = (proc / "smaps_rollup").read_text()
        except OSError:  # gone meanwhile
            continue
        total_kb += sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return round(total_kb / 1024, 1)


def postgres_cpu_seconds(cluster: Cluster) -> float:
    """User + system CPU seconds ``cluster``'s processes have used so far (those that ended
    counted in their postmaster's reaped children)."""
    total = 0.0
    for proc in _cluster_processes(cluster):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def _cluster_processes(cluster: Cluster) -> list[Path]:
    """``/proc/PID`` of ``cluster``'s postmaster and of its children (backends and auxiliary
    processes)."""
    postmaster = (cluster.data / "postmaster.pid").read_text().split()[0]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if postmaster in (stat.parent.name, parent):
            found.append(stat.parent)
    return found
