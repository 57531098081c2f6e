"""The server store's tables and its numbered migrations (see :mod:`sync_core.migrations`).

A new store gets ``server_meta`` when it is opened and, at import, the change sequence,
the six datasets and the journal; the migrations then add the rest, so a new store and a
migrated old one end in the same shape. Step 1 brings any store made before versioning
to one shape: stores made before the journal existed (their change history is unknown) get
an empty journal and a tombstone horizon at their last change, so every device that synced
with them runs a full sync once instead of missing a change. Step 7 moves the portraits of
a store made before portrait files out of its ``jpeg`` column into the files.
"""

from __future__ import annotations

from functools import partial

from sync_core.key_slots import new_data_key
from sync_core.migrations import Cursor, Migration, statements, table_exists
from sync_core.muster import REGISTRATION_DDL
from sync_core.protocol import DATASETS
from sync_core.server.portraits import PortraitFiles

META_DDL = (
    "CREATE TABLE IF NOT EXISTS server_meta ("
    "server_id VARCHAR, imported_at TIMESTAMP, horizon BIGINT NOT NULL DEFAULT 0, "
    "last_seq BIGINT NOT NULL DEFAULT 0, ship_key BYTEA)"
)
JOURNAL_DDL = (
    "CREATE TABLE IF NOT EXISTS journal ("
    "_seq BIGINT NOT NULL, key VARCHAR NOT NULL, id VARCHAR NOT NULL, op VARCHAR NOT NULL, "
    "changed_at TIMESTAMP NOT NULL)"
)
# Portraits are fetched by content hash (see ServerStore.pictures).
PICTURES_INDEX_DDL = "CREATE INDEX IF NOT EXISTS pictures_sha256 ON pictures (sha256)"
REGISTRATIONS_DDL = REGISTRATION_DDL.format(
    extra=", received_at TIMESTAMP NOT NULL, uploaded_by VARCHAR NOT NULL"
)
# Bearer tokens as SHA-256 (sync_core.server.tokens); expires_at is naive UTC.
SESSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS sessions ("
    "token_sha256 VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, role VARCHAR NOT NULL, "
    "expires_at TIMESTAMP NOT NULL)"
)

# Devices' refresh tokens as SHA-256 (sync_core.server.tokens), one per user and device.
CREDENTIALS_DDL = (
    "CREATE TABLE IF NOT EXISTS device_credentials ("
    "username VARCHAR NOT NULL, device_id VARCHAR NOT NULL, token_sha256 VARCHAR NOT NULL, "
    "PRIMARY KEY (username, device_id))"
)


def _change_feed(cur: Cursor) -> None:
    cur.execute("ALTER TABLE server_meta ADD COLUMN IF NOT EXISTS horizon BIGINT DEFAULT 0")
    cur.execute("ALTER TABLE server_meta ADD COLUMN IF NOT EXISTS last_seq BIGINT DEFAULT 0")
    if not table_exists(cur, "journal"):
        cur.execute(JOURNAL_DDL)
        latest = " UNION ALL ".join(f'SELECT max(_seq) AS s FROM "{key}"' for key in DATASETS)
        cur.execute(f"UPDATE server_meta SET last_seq = (SELECT coalesce(max(s), 0) FROM ({latest}) AS t)")
        cur.execute("UPDATE server_meta SET horizon = last_seq")
    cur.execute("DROP TABLE IF EXISTS tombstones")  # the journal's deletes replaced it


def _key_slots(cur: Cursor) -> None:
    """A store made before key slots gets a ship data key of its own; its users get their
    slots at their next good sign-in (:mod:`sync_core.server.missing_slots`)."""
    cur.execute("ALTER TABLE server_meta ADD COLUMN IF NOT EXISTS ship_key BYTEA")
    cur.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS key_slot VARCHAR")
    cur.execute("UPDATE server_meta SET ship_key = $1 WHERE ship_key IS NULL", [new_data_key()])


# The steps that need only the store; migrations() gives them all.
_STORE_STEPS = (
    Migration(1, "the change feed: journal, horizon and last change in server_meta", _change_feed),
    Migration(2, "the registration log", statements(REGISTRATIONS_DDL)),
    Migration(3, "portraits indexed by content hash", statements(PICTURES_INDEX_DDL)),
    Migration(4, "sessions kept across restarts", statements(SESSIONS_DDL)),
    Migration(5, "devices' refresh tokens", statements(CREDENTIALS_DDL)),
    Migration(6, "the ship data key and the users' key slots (docs/security.md)", _key_slots),
)


# Step 7 reads the portraits to move by ranges of this many change sequence values (the
# rows of a range are stored together, so each read touches a few row groups).
MOVE_SEQ_RANGE = 200


def _portraits_to_files(portraits: PortraitFiles, cur: Cursor) -> None:
    """Write every portrait held in ``pictures.jpeg`` to its file, sync them, then empty the
    column (in the migration's transaction: a failed step leaves the column as it was, and
    files written twice are the same bytes)."""
    bounds = cur.execute("SELECT min(_seq), max(_seq) FROM pictures WHERE jpeg IS NOT NULL").fetchall()[0]
    if bounds[0] is None:
        return
    for low in range(int(bounds[0]), int(bounds[1]) + 1, MOVE_SEQ_RANGE):
        rows = cur.execute(
            "SELECT sha256, jpeg FROM pictures WHERE jpeg IS NOT NULL AND _seq >= $1 AND _seq < $2",
            [low, low + MOVE_SEQ_RANGE],
        ).fetchall()
        for sha256, jpeg in rows:
            portraits.write(sha256, bytes(jpeg))
    portraits.sync()
    cur.execute("UPDATE pictures SET jpeg = NULL WHERE jpeg IS NOT NULL")


def migrations(portraits: PortraitFiles) -> tuple[Migration, ...]:
    """The server store's steps, the portraits' files going to ``portraits``."""
    return _STORE_STEPS + (
        Migration(7, "portraits moved out of the store into files", partial(_portraits_to_files, portraits)),
    )
