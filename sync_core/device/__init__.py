"""The device side: local store, HTTP client, sign-in and the sync engine.

The app and the CLI use only what ``__all__`` names. Importing it sets the process's
allocators (:mod:`sync_core.allocator`: two malloc arenas, capped before a sync starts its
worker threads, large blocks given back when freed, DuckDB's freed pages given back at
once), and
keeps httpx's command line out: httpx imports it (and with it rich, click and pygments,
~4 MB here) whenever rich is installed, and a device never runs it.
"""

import sys

from sync_core.allocator import limit_malloc_arenas, load_duckdb, return_large_blocks

limit_malloc_arenas()  # before the imports below start any thread (DuckDB's)
return_large_blocks()
load_duckdb()  # before the imports below load it with its defaults
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # httpx then skips its CLI

# ruff: noqa: E402
from sync_core.device.client import ServerClient
from sync_core.device.engine import SyncEngine
from sync_core.device.session import Session, sign_in
from sync_core.device.status import DatasetStatus, SyncStatus, UploadStatus
from sync_core.device.store import DeviceStore

__all__ = [
    "DatasetStatus",
    "DeviceStore",
    "ServerClient",
    "Session",
    "SyncEngine",
    "SyncStatus",
    "UploadStatus",
    "sign_in",
]
