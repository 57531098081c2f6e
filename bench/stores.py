"""A new server store on either engine for a server benchmark, and PostgreSQL's memory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fixtures.postgres import Cluster

ENGINES = ("duckdb", "postgresql")


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
    """The memory of ``cluster``'s processes now (its postmaster and every child: backends
    and auxiliary processes), in MB to 0.1: the sum of their proportional set sizes (``Pss``
    in ``/proc/PID/smaps_rollup``), so the shared buffers every backend maps count once in
    all, not once per backend as a sum of their RSS would."""
    postmaster = (cluster.data / "postmaster.pid").read_text().split()[0]
    total_kb = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, parent = stat.parent.name, stat.read_text().rsplit(")", 1)[1].split()[1]
            if postmaster not in (pid, parent):
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except OSError:  # gone meanwhile
            continue
        total_kb += sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return round(total_kb / 1024, 1)
