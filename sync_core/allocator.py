"""The process's memory allocators: glibc's malloc, Arrow's memory pool and DuckDB's jemalloc.

glibc gives each thread that allocates an arena of its own (up to eight per core), and
memory freed in one arena is not reused by a thread of another. A sync's work hops between
the event loop and worker threads (``asyncio.to_thread``, the body pipe), so the bytes of a
full sync's portraits stayed behind in arenas no thread reused: with two arenas the peak
RSS of a full sync of the icon preset with 40 KB portraits went from ~279 to ~255 MB here
(``python -m bench.device``).

glibc also raises its mmap threshold to the largest block freed so far (up to 32 MB), after
which blocks of a few MB (a batch of portraits, an answer's body) come from the heap and stay
resident once freed: :func:`return_large_blocks` fixes the threshold at glibc's initial
128 KB. Arrow's default pool (mimalloc, or jemalloc) keeps freed buffers for reuse as well;
:func:`sync_core.server.serve.use_system_pool` hands the server's Arrow buffers to malloc
instead (a device reads Arrow with nanoarrow, which allocates from malloc). On the device the
two took a full sync of the icon preset with 40 KB portraits from ~220 to ~176 MB (three syncs
in one process, when the device still read Arrow with pyarrow).
Where the C library is not glibc, the mallopt calls change nothing.

DuckDB allocates from a jemalloc of its own, which keeps freed pages for a while (its
"dirty decay") before it gives them back: :func:`load_duckdb` loads DuckDB with that delay at
zero. A group-by over 300,000 rows left ~49 MB resident before, ~1 MB after; a rows-only full
sync of the icon preset (15 in one process) peaked at ~168 MB before, ~163 MB after.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameters (malloc.h): the mmap threshold and the most arenas.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# glibc's initial mmap threshold, made fixed: blocks of this many bytes or more are mapped
# apart and given back to the system when freed.
MMAP_THRESHOLD = 128 * 1024
MALLOC_ARENAS = 2
# The options DuckDB's jemalloc reads from the environment as DuckDB loads, and ours: pages
# freed go back to the system at once.
DUCKDB_ALLOCATOR_ENV = "DUCKDB_JE_MALLOC_CONF"
DUCKDB_ALLOCATOR_OPTIONS = "dirty_decay_ms:0"


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; False where the C library has none or refused."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(parameter, value))


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap this process's malloc arenas at ``arenas`` (arenas made already stay); True when
    the C library took it."""
    return _mallopt(M_ARENA_MAX, arenas)


def return_large_blocks() -> bool:
    """Make glibc give every block of ``MMAP_THRESHOLD`` bytes or more back to the system
    when it is freed (the threshold no longer rises); True when the C library took it."""
    return _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def load_duckdb() -> bool:
    """Import DuckDB with its jemalloc giving freed pages back at once
    (``DUCKDB_ALLOCATOR_OPTIONS``); True when it loaded with them. False, and nothing changes, when
    DuckDB is loaded already or the environment names options of its own. The options are in
    the environment only while DuckDB loads, so a process this one starts (the server of
    ``muster demo``) keeps DuckDB's defaults."""
    if "duckdb" in sys.modules or DUCKDB_ALLOCATOR_ENV in os.environ:
        return False
    os.environ[DUCKDB_ALLOCATOR_ENV] = DUCKDB_ALLOCATOR_OPTIONS
    try:
        import duckdb  # noqa: F401  # its allocator reads the options as it loads
    finally:
        del os.environ[DUCKDB_ALLOCATOR_ENV]
    return True
