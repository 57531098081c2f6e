"""``muster admin``: the ship's office edits server data through the admin API.

Sign-in as an office user, then one edit: ``set`` fields of (or create) a record, ``delete``
it, or, for ``set reservations ID picture=PATH``, replace that profile's portrait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync_core.device.client import ServerClient
from sync_core.errors import SyncError
from sync_core.protocol import RecordChange

PICTURE_FIELD = "picture"


async def run_admin(
    server_url: str,
    username: str,
    password: str,
    action: str,
    key: str,
    record_id: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Apply one edit; returns ``{"cursor": N, "error": None}`` or ``{"cursor": None, "error": reason}``.

    A picture file that cannot be read is an error too; nothing is sent then.
    """
    try:
        async with ServerClient(server_url) as client:
            await client.sign_in(username, password)
            cursor = await _edit(client, action, key, record_id, dict(fields))
    except (SyncError, OSError, ValueError) as exc:
        return {"cursor": None, "error": str(exc)}
    return {"cursor": cursor, "error": None}


async def _edit(client: ServerClient, action: str, key: str, record_id: str, fields: dict[str, Any]) -> int:
    picture = fields.pop(PICTURE_FIELD, None) if key == "reservations" else None
    cursor = 0
    if action == "delete" or fields or picture is None:
        change = RecordChange(
            key=key, id=record_id, op="delete" if action == "delete" else "set", fields=fields
        )
        cursor = (await client.post_changes([change])).cursor
    if picture is not None and action == "set":
        cursor = (await client.put_picture(record_id, Path(str(picture)).read_bytes())).cursor
    return cursor
