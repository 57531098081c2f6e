"""A device process keeps few malloc arenas (glibc), however many threads allocate, and gives
freed blocks of a MB (its own and DuckDB's) back to the system; so does the server, Arrow's
buffers included."""

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
    heap, _ = _left_resident("")
    assert heap > 8  # without the device: the heap keeps them
    heap, _ = _left_resident("import sync_core.device\n")
    assert heap < 4


def test_the_server_gives_arrow_buffers_back() -> None:
    _, arrow = _left_resident("")
    assert arrow > 40  # Arrow's own pool keeps them
    server = (
        "from sync_core.allocator import return_large_blocks\n"
        "from sync_core.server.serve import use_system_pool\n"
        "return_large_blocks()\nuse_system_pool()\n"
    )
    _, arrow = _left_resident(server)
    assert arrow < 4


# A group-by over 300,000 rows in DuckDB, its table dropped; prints the MB it left resident
# and whether DuckDB's allocator options are still in the environment.
_DUCKDB = """
import os
import duckdb
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
con = duckdb.connect()
before = anon()
con.execute("CREATE TABLE t AS SELECT md5(range::VARCHAR) AS s FROM range(300000)")
con.execute("SELECT s, count(*) FROM t GROUP BY s ORDER BY 2 DESC LIMIT 3").fetchall()
con.execute("DROP TABLE t")
print(anon() - before, "DUCKDB_JE_MALLOC_CONF" in os.environ)
"""


def _duckdb_left_resident(prelude: str) -> tuple[float, str]:
    done = subprocess.run(
        [sys.executable, "-c", prelude + _DUCKDB], check=True, capture_output=True, text=True
    )
    left, in_environment = done.stdout.split()
    return float(left), in_environment


def test_a_device_process_has_duckdb_give_freed_pages_back_and_its_children_not() -> None:
    left, _ = _duckdb_left_resident("")
    assert left > 20  # without the device: DuckDB's allocator keeps them a while
    left, in_environment = _duckdb_left_resident("import sync_core.device\n")
    assert left < 8
    assert in_environment == "False"  # a process it starts loads DuckDB with its defaults
