"""The device side: local store, HTTP client, sign-in and the sync engine.

The app and the CLI use only what ``__all__`` names.
"""

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
