"""A process's own peak memory, for the benchmark lines."""

from __future__ import annotations


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
