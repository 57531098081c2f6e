"""The device process's cyclic garbage collector, kept out of the card scans.

CPython's full (oldest-generation) collection walks every object the collector tracks. On a
device holding the icon preset (10,000 profiles) with the app running, that was ~135,000
objects and 43-88 ms per full collection, and a full collection came every ~7 card scans,
so about one scan in thirty took 50-80 ms instead of ~8 ms (measured here with the scan
benchmark, ``python -m bench.run``, 200 scans: p99 52-77 ms).

:func:`settle` runs one full collection at a moment where a pause is expected anyway (right
after the people index is loaded), then freezes what survives (:func:`gc.freeze`): later
collections leave those objects alone and walk only what was made since (~26,000 objects,
10-19 ms). The objects frozen are not lost to the collector: the next :func:`settle` thaws
them first, so a cycle that became garbage meanwhile is collected then.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Thaw what an earlier call froze, collect every generation, then freeze the survivors
    out of later collections; returns the number of objects frozen. Holds the interpreter
    lock for the whole collection (~40-90 ms on the icon preset), whatever thread calls it."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
