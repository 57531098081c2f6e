"""A device process keeps few malloc arenas (glibc), however many threads allocate."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")

THREADS = 6
# Six threads allocate and free at the same time, then glibc lists its arenas on stderr.
_ALLOCATE = f"""
import ctypes, threading
barrier = threading.Barrier({THREADS})
def work():
    barrier.wait()
    for _ in range(200):
        chunks = [bytearray(40_000) for _ in range(20)]
        del chunks
threads = [threading.Thread(target=work) for _ in range({THREADS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(prelude: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", prelude + _ALLOCATE], check=True, capture_output=True, text=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_a_device_process_keeps_two_arenas() -> None:
    assert _arenas("") > 2  # without the device: an arena per thread that allocates
    assert _arenas("import sync_core.device\n") <= 2
