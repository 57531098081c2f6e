"""A process's own peak memory and CPU time, for the benchmark lines."""

from __future__ import annotations

import os
from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """The high-water mark of process ``pid``'s resident set (``VmHWM`` in
    ``/proc/PID/status``), in MB, to 0.1. Unlike ``ru_maxrss``, which a child starts with
    its parent's peak, it counts only the process's own memory since it began (or exec'd).
    Raises OSError when the process is gone."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise OSError(f"/proc/{pid}/status has no VmHWM")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
