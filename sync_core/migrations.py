"""Numbered, forward-only schema migrations for the device store and the server store.

A store records the migrations applied to it in ``schema_version`` (one row per step:
its number, what it did, when). Opening a store applies, in order and inside the caller's
transaction, every step numbered above the highest one recorded, so a store made by any
earlier release opens with the current code. Steps are never edited or removed once
released; a change of schema is a new step at the end.

A store made before versioning existed has no ``schema_version`` table: it counts as
version 0, and step 1 of each store brings any such store to one known shape, so every
statement of a step 1 is idempotent (``IF NOT EXISTS``). A store whose version is above
the highest step known here was made by a newer release and is refused.

The SQL used here runs on DuckDB and on PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sync_core.sql import Cursor

log = logging.getLogger(__name__)

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, summary VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    """Step ``version`` of a store's schema: ``apply(cur)`` runs its statements."""

    version: int
    summary: str
    apply: Callable[[Cursor], None]


class NewerSchema(Exception):
    """The store was made by a newer release (its schema version is above every step known)."""


def statements(*sql: str) -> Callable[[Cursor], None]:
    """A migration's ``apply`` that runs ``sql`` in order."""

    def apply(cur: Cursor) -> None:
        for statement in sql:
            cur.execute(statement)

    return apply


def table_exists(cur: Cursor, name: str) -> bool:
    """True when table ``name`` exists in the current schema."""
    rows = cur.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = $1 AND table_schema = current_schema()",
        [name],
    ).fetchall()
    return bool(rows[0][0])


def schema_version(cur: Cursor) -> int:
    """The highest migration applied to the store (0 for a store made before versioning)."""
    if not table_exists(cur, "schema_version"):
        return 0
    return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0])


def migrate(cur: Cursor, steps: Sequence[Migration]) -> list[int]:
    """Apply the ``steps`` numbered above the store's version, in order; returns their numbers.

    ``steps`` are numbered 1, 2, 3... Raises NewerSchema when the store's version is above
    the last step. Runs in the caller's transaction: a failed step leaves the store as it was.
    """
    assert [step.version for step in steps] == list(range(1, len(steps) + 1)), "steps are numbered 1..n"
    current = schema_version(cur)
    if current > len(steps):
        raise NewerSchema(f"schema version {current} is newer than this release's {len(steps)}")
    cur.execute(SCHEMA_VERSION_DDL)
    applied = []
    for step in steps[current:]:
        step.apply(cur)
        cur.execute(
            "INSERT INTO schema_version VALUES ($1, $2, $3)",
            [step.version, step.summary, datetime.now(UTC).replace(tzinfo=None)],
        )
        log.info("store migrated to schema version %d: %s", step.version, step.summary)
        applied.append(step.version)
    return applied
