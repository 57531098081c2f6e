"""The process's memory allocators: glibc's malloc and Arrow's memory pool.

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
:func:`use_system_pool` hands Arrow's buffers to malloc instead. On the device the two took a
full sync of the icon preset with 40 KB portraits from ~220 to ~176 MB (three syncs in one
process). Where the C library is not glibc, the mallopt calls change nothing.
"""

from __future__ import annotations

import ctypes

import pyarrow as pa

# glibc's mallopt parameters (malloc.h): the mmap threshold and the most arenas.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# glibc's initial mmap threshold, made fixed: blocks of this many bytes or more are mapped
# apart and given back to the system when freed.
MMAP_THRESHOLD = 128 * 1024
MALLOC_ARENAS = 2


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


def use_system_pool() -> None:
    """Allocate Arrow's buffers from this process's malloc (Arrow's ``system`` pool), so a
    freed batch goes back to the system with the rest (:func:`return_large_blocks`)."""
    pa.set_memory_pool(pa.system_memory_pool())
