"""Bearer tokens the server hands out at sign-in.

Tokens are random (``secrets.token_urlsafe``) and expire ``lifetime`` seconds after sign-in,
by the server's clock. Each is kept in memory and, as its SHA-256 (never the token itself),
in the server store's ``sessions`` table, so a restart of the server (maintenance, a crash)
does not sign the crew out: a handheld's Retry works once the server is back.

A user's tokens are revoked (:meth:`TokenRegistry.revoke_user`) when the office deletes the
user, changes their role or sets their password (:func:`users_to_revoke`), so a deleted
user is out at once and a demoted one keeps no office rights.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync_core.clock import Clock
from sync_core.duck import Database, first_row, naive_utc
from sync_core.protocol import RecordChange

# Fields of a user whose change ends that user's sessions.
_REVOKING_FIELDS = frozenset({"role", "password_hash", "password"})

# expires_at is naive UTC.
_SESSIONS_DDL = """CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, role VARCHAR NOT NULL,
    expires_at TIMESTAMP NOT NULL)"""


@dataclass(frozen=True)
class Grant:
    """Who a token speaks for, and until when (aware UTC, the server's clock)."""

    username: str
    role: str
    expires_at: datetime


class TokenRegistry:
    """Issues and resolves bearer tokens kept in ``db``; safe to use from several threads.

    A token is looked up in memory first, then in the store (a token issued before a
    restart). Expired sessions are removed from the store when the registry starts.
    """

    def __init__(self, clock: Clock, db: Database, lifetime: float = 12 * 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._db = db
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        with db.cursor() as cur:
            cur.execute(_SESSIONS_DDL)
            cur.execute("DELETE FROM sessions WHERE expires_at <= ?", [naive_utc(clock.now())])

    def issue(self, username: str, role: str) -> str:
        """A new token for ``username`` with ``role``, stored before it is handed out."""
        token = secrets.token_urlsafe(32)
        grant = Grant(username, role, self.clock.now() + timedelta(seconds=self.lifetime))
        row = [_digest(token), username, role, naive_utc(grant.expires_at)]
        with self._db.cursor() as cur:
            cur.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", row)
        with self._lock:
            self._grants[token] = grant
        return token

    def resolve(self, token: str) -> Grant | None:
        """The grant of a live ``token``, or None when unknown or expired."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            grant = self._stored(token)
            if grant is None:
                return None
            with self._lock:
                self._grants[token] = grant
        if grant.expires_at <= self.clock.now():
            with self._lock:
                self._grants.pop(token, None)
            return None
        return grant

    def revoke_user(self, username: str) -> None:
        """End every session of ``username`` (in memory and in the store)."""
        with self._db.cursor() as cur:
            cur.execute("DELETE FROM sessions WHERE username = ?", [username])
        with self._lock:
            for token in [token for token, grant in self._grants.items() if grant.username == username]:
                del self._grants[token]

    def _stored(self, token: str) -> Grant | None:
        query = "SELECT username, role, expires_at FROM sessions WHERE token_sha256 = ?"
        with self._db.cursor() as cur:
            row = first_row(cur, query, [_digest(token)])
        return Grant(row[0], row[1], row[2].replace(tzinfo=UTC)) if row else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def users_to_revoke(changes: list[RecordChange]) -> set[str]:
    """The usernames whose sessions ``changes`` end: users deleted, or given a role or a
    password."""
    return {
        change.id
        for change in changes
        if change.key == "users" and (change.op == "delete" or _REVOKING_FIELDS & change.fields.keys())
    }
