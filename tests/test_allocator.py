"""A device process keeps few malloc arenas (glibc), however many threads allocate, and gives
freed blocks of a MB (its own and Arrow's) back to the system."""

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


# After an 8 MB block is freed (glibc's mmap threshold would rise to it), 100 blocks of 1 MB
# between small ones that stay, then 40 Arrow arrays of 2 MB, are made and freed; prints the
# MB each left resident.
_FREE = """
import pyarrow as pa
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
big = bytes(8 << 20)
del big
before, kept, blocks = anon(), [], []
for _ in range(100):
    blocks.append(bytes(1 << 20))
    kept.append(bytes(600))
del blocks
heap, before = anon() - before, anon()
arrays = [pa.array(range(at, at + 250_000)) for at in range(40)]
del arrays
print(heap, anon() - before)
"""


def _left_resident(prelude: str) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", prelude + _FREE], check=True, capture_output=True, text=True)
    heap, arrow = done.stdout.split()
    return float(heap), float(arrow)


def test_a_device_process_gives_freed_blocks_back() -> None:
    heap, arrow = _left_resident("")
    assert heap > 8 and arrow > 40  # without the device: the heap and Arrow's pool keep them
    heap, arrow = _left_resident("import sync_core.device\n")
    assert heap < 4 and arrow < 4
