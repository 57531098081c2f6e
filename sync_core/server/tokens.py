"""Bearer tokens the server hands out at sign-in, and the devices' refresh tokens.

Access tokens are random (``secrets.token_urlsafe``) and expire ``lifetime`` seconds after
sign-in, by the server's clock. Each is kept in memory and, as its SHA-256 (never the token
itself), in the server store's ``sessions`` table, so a restart of the server (maintenance,
a crash) does not sign the crew out: a handheld's Retry works once the server is back.

A refresh token is a device credential: issued at a sign-in that names the device, bound to
the username and the device id, kept only as its SHA-256 in ``device_credentials``, with no
expiry of its own. It renews the session's access token without a person
(``POST /api/v1/session/renew``) until it is revoked: :meth:`TokenRegistry.revoke_user`
drops a user's access tokens and device credentials when the office deletes the user,
changes their role or sets their password (:func:`users_to_revoke`), so a deleted user is
out at once and a demoted one keeps no office rights.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync_core.clock import Clock
from sync_core.duck import first_row, naive_utc
from sync_core.protocol import RecordChange
from sync_core.sql import Connectable

# Fields of a user whose change ends that user's sessions.
_REVOKING_FIELDS = frozenset({"role", "password_hash", "password"})


@dataclass(frozen=True)
class Grant:
    """Who a token speaks for, and until when (aware UTC, the server's clock)."""

    username: str
    role: str
    expires_at: datetime


class TokenRegistry:
    """Issues and resolves bearer tokens kept in ``db`` (the server store); safe to use from several threads.

    A token is looked up in memory first, then in the store's ``sessions`` table (a token
    issued before a restart). Expired sessions are removed from the store when the registry starts.
    """

    def __init__(self, clock: Clock, db: Connectable, lifetime: float = 12 * 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._db = db
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        with db.cursor() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at <= $1", [naive_utc(clock.now())])

    def issue(self, username: str, role: str) -> str:
        """A new token for ``username`` with ``role``, stored before it is handed out."""
        token = secrets.token_urlsafe(32)
        grant = Grant(username, role, self.clock.now() + timedelta(seconds=self.lifetime))
        row = [_digest(token), username, role, naive_utc(grant.expires_at)]
        with self._db.cursor() as cur:
            cur.execute("INSERT INTO sessions VALUES ($1, $2, $3, $4)", row)
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

    def held(self, token: str) -> Grant | None:
        """The grant of ``token`` when it is a live session held in memory, else None (an
        unknown token, one issued before a restart and not used since, an expired one):
        a lookup that never waits for the store, for the event loop."""
        with self._lock:
            grant = self._grants.get(token)
        return grant if grant is not None and grant.expires_at > self.clock.now() else None

    def issue_refresh(self, username: str, device_id: str) -> str:
        """A new refresh token for ``username`` on ``device_id`` (it replaces the device's
        previous one), stored as its SHA-256 before it is handed out."""
        token = secrets.token_urlsafe(32)
        with self._db.cursor() as cur:
            cur.execute(
                "INSERT INTO device_credentials VALUES ($1, $2, $3) ON CONFLICT (username, device_id) "
                "DO UPDATE SET token_sha256 = excluded.token_sha256",
                [username, device_id, _digest(token)],
            )
        return token

    def refresh_valid(self, username: str, device_id: str, token: str) -> bool:
        """True when ``token`` is the live refresh token of ``username`` on ``device_id``."""
        query = "SELECT token_sha256 FROM device_credentials WHERE username = $1 AND device_id = $2"
        with self._db.cursor() as cur:
            row = first_row(cur, query, [username, device_id])
        return row is not None and secrets.compare_digest(row[0], _digest(token))

    def revoke_user(self, username: str) -> None:
        """Drop every access token and device credential of ``username``: their sessions
        end at the next request and no device can renew them (a person signs in again)."""
        with self._db.cursor() as cur:
            cur.execute("DELETE FROM sessions WHERE username = $1", [username])
            cur.execute("DELETE FROM device_credentials WHERE username = $1", [username])
        with self._lock:
            for token in [token for token, grant in self._grants.items() if grant.username == username]:
                del self._grants[token]

    def _stored(self, token: str) -> Grant | None:
        query = "SELECT username, role, expires_at FROM sessions WHERE token_sha256 = $1"
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
