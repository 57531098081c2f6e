"""Bearer tokens the server hands out at sign-in.

Tokens are random (``secrets.token_urlsafe``), held in memory, and expire after
``lifetime`` seconds of the injected clock; a restart of the server signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from sync_core.clock import Clock


@dataclass(frozen=True)
class Grant:
    """Who a token speaks for, and until when (monotonic seconds)."""

    username: str
    role: str
    expires_at: float


class TokenRegistry:
    """Issues and resolves bearer tokens; safe to use from several threads."""

    def __init__(self, clock: Clock, lifetime: float = 12 * 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, username: str, role: str) -> str:
        """A new token for ``username`` with ``role``."""
        token = secrets.token_urlsafe(32)
        grant = Grant(username, role, self.clock.monotonic() + self.lifetime)
        with self._lock:
            self._grants[token] = grant
        return token

    def resolve(self, token: str) -> Grant | None:
        """The grant of a live ``token``, or None when unknown or expired."""
        with self._lock:
            grant = self._grants.get(token)
            if grant is not None and grant.expires_at <= self.clock.monotonic():
                del self._grants[token]
                grant = None
        return grant
