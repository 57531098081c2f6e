"""The device process's C allocator: few malloc arenas (glibc).

glibc gives each thread that allocates an arena of its own (up to eight per core), and
memory freed in one arena is not reused by a thread of another. A sync's work hops between
the event loop and worker threads (``asyncio.to_thread``, the body pipe), so the bytes of a
full sync's portraits stayed behind in arenas no thread reused: with two arenas the peak
RSS of a full sync of the icon preset with 40 KB portraits went from ~279 to ~255 MB here
(``python -m bench.device``). Where the C library is not glibc, nothing changes.
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameter for the most arenas (malloc.h).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap this process's malloc arenas at ``arenas`` (arenas made already stay); True when
    the C library took it, False where it has no ``mallopt`` or refused."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_ARENA_MAX, arenas))
