"""The server's side of key slots (docs/security.md, 'Keys: the ship data key and key slots').

The server store keeps the ship's data key (``server_meta.ship_key``): the fixture generator's
``ship.key`` beside the ship's Parquet files when the ship is imported, else a new random one.
Setting a user's ``password`` (an office edit) stores its argon2id verifier and the user's
new key slot, never the password itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync_core.errors import EditRejected
from sync_core.key_slots import DATA_KEY_BYTES, SHIP_KEY_FILE, make_slot, new_data_key
from sync_core.passwords import HASHER

PASSWORD_FIELD = "password"
META_DDL = "ALTER TABLE server_meta ADD COLUMN IF NOT EXISTS ship_key BLOB"


def imported_ship_key(data_dir: Path) -> bytes:
    """The ship data key to import from ``data_dir``: its ``ship.key`` (32 bytes), or a new one
    when the ship has none or it is not 32 bytes long (the users' key slots then open nothing
    and passwords must be set again)."""
    path = data_dir / SHIP_KEY_FILE
    key = path.read_bytes() if path.is_file() else b""
    return key if len(key) == DATA_KEY_BYTES else new_data_key()


def with_password(ship_key: bytes | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A users edit's ``fields`` with ``password`` replaced by its verifier and its key slot
    over ``ship_key`` (the store's ship data key; about 40 ms: two argon2id derivations, so
    callers run it before taking the store's write lock). Raises EditRejected for a password
    that is not text of 1 to 256 characters or a store without a ship key."""
    if PASSWORD_FIELD not in fields:
        return fields
    fields = dict(fields)
    password = fields.pop(PASSWORD_FIELD)
    if not isinstance(password, str) or not 1 <= len(password) <= 256:
        raise EditRejected("users.password takes text of 1 to 256 characters")
    if ship_key is None:
        raise EditRejected("this server store has no ship data key")
    return fields | {"password_hash": HASHER.hash(password), "key_slot": make_slot(password, ship_key)}
