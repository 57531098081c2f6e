"""The reference Mustering server: FastAPI app, server DuckDB store and data import."""

from sync_core.server.app import create_app
from sync_core.server.serve import open_store, serve
from sync_core.server.store import ServerStore

__all__ = ["ServerStore", "create_app", "open_store", "serve"]
