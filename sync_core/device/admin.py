"""``muster admin`` and ``muster report``: the ship's office works through the admin API.

Sign-in as an office user, then one edit: ``set`` fields of (or create) a record, ``delete``
it, or, for ``set reservations ID picture=PATH``, replace that profile's portrait; or start
or end the ship's safety mode; or fetch a drill report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sync_core.device.client import ServerClient, server_address_problem
from sync_core.errors import SyncError
from sync_core.protocol import DATASETS, RecordChange, SafetyMode

PICTURE_FIELD = "picture"
T = TypeVar("T")


def edit_problem(action: str, key: str, fields: dict[str, Any]) -> str | None:
    """Why the edit cannot be sent as given, or None (checked before any request)."""
    if key not in DATASETS:
        return f"unknown dataset {key!r}; one of {', '.join(DATASETS)}"
    if action == "set" and not fields:
        return "set needs at least one FIELD=VALUE"
    if action == "delete" and fields:
        return "delete takes no FIELD=VALUE"
    if PICTURE_FIELD in fields and key != "reservations":
        return "picture=PATH applies to reservations only"
    return None


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

    Nothing is sent when :func:`edit_problem` objects or a picture file cannot be read.
    """
    problem = server_address_problem(server_url) or edit_problem(action, key, fields)
    if problem:
        return {"cursor": None, "error": problem}
    fields = dict(fields)
    try:
        picture = Path(str(fields.pop(PICTURE_FIELD))).read_bytes() if PICTURE_FIELD in fields else None
        async with ServerClient(server_url) as client:
            await client.sign_in(username, password)
            cursor = await _edit(client, action, key, record_id, fields, picture)
    except (SyncError, OSError) as exc:
        return {"cursor": None, "error": str(exc)}
    return {"cursor": cursor, "error": None}


async def _edit(
    client: ServerClient, action: str, key: str, record_id: str, fields: dict[str, Any], picture: bytes | None
) -> int:
    if action == "delete":
        return (await client.post_changes([RecordChange(key=key, id=record_id, op="delete")])).cursor
    cursor = 0
    if fields:
        change = RecordChange(key=key, id=record_id, op="set", fields=fields)
        cursor = (await client.post_changes([change])).cursor
    if picture is not None:
        cursor = (await client.put_picture(record_id, picture)).cursor
    return cursor


async def run_safety_mode(
    server_url: str, username: str, password: str, mode: SafetyMode | None
) -> dict[str, Any]:
    """Start ``mode`` ship-wide (None: end the muster under way); returns ``{"mode", "since",
    "set_by", "error": None}`` or ``{"error": reason}``."""
    state, error = await _signed_in_call(server_url, username, password, lambda c: c.set_safety_mode(mode))
    return {"error": error} if state is None else state.model_dump(mode="json") | {"error": None}


async def fetch_report(
    server_url: str,
    username: str,
    password: str,
    mode: SafetyMode,
    since: datetime | None,
    format: str,
    out: Path,
) -> dict[str, Any]:
    """Write the drill report to ``out`` (owner-only permissions: it names people); returns
    ``{"out", "bytes", "error": None}`` or ``{"error": reason}``."""

    async def fetch(client: ServerClient) -> int:
        body = await client.report(mode, since, format)
        out.touch(mode=0o600)
        out.chmod(0o600)
        out.write_bytes(body)
        return len(body)

    size, error = await _signed_in_call(server_url, username, password, fetch)
    return {"error": error} if size is None else {"out": str(out), "bytes": size, "error": None}


async def _signed_in_call(
    server_url: str, username: str, password: str, call: Callable[[ServerClient], Awaitable[T]]
) -> tuple[T | None, str | None]:
    """``(call's result, None)`` with a client signed in as ``username``, or ``(None, reason)``
    for a bad address, a failed request or a file that cannot be written."""
    problem = server_address_problem(server_url)
    if problem:
        return None, problem
    try:
        async with ServerClient(server_url) as client:
            await client.sign_in(username, password)
            return await call(client), None
    except (SyncError, OSError) as exc:
        return None, str(exc)
