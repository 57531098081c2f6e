"""Signing a crew member in on the device.

The server checks the credentials when it answers; when it cannot be reached, the users
synced to the device are checked instead (sign-in is checked by the server
when it answers, else against the synced users), so mustering can go on
offline after one successful full sync. Either way the device's lockout applies
(:mod:`sync_core.device.sign_in_rules`): a locked username is refused before any check, a
refused sign-in counts towards the lockout, and a successful one resets the count and marks
the device as in use (the retention count restarts).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from sync_core.clock import Clock, SystemClock, within
from sync_core.device.client import ServerClient
from sync_core.device.sign_in_rules import count_failure, count_success, ensure_unlocked
from sync_core.device.store import DeviceStore
from sync_core.errors import InvalidLogin, ServerUnreachable


class Session(BaseModel):
    """A signed-in crew member. ``online`` is False when the synced users vouched for them;
    ``server_id`` is the server's identity (None offline)."""

    username: str
    display_name: str
    role: str
    server_id: str | None
    online: bool


async def sign_in(
    client: ServerClient,
    store: DeviceStore,
    username: str,
    password: str,
    *,
    clock: Clock | None = None,
    server_answers: bool = True,
    deadline: float | None = None,
) -> Session:
    """Sign ``username`` in with the server, or offline against the synced users.

    ``clock`` (default the system clock) times the lockout and the device's last use, and
    ``deadline`` (seconds of it; e.g. ``INTERACTIVE_DEADLINE`` while a person waits; None:
    the client's own timeouts) bounds the server's answer: past it the synced users decide,
    as when the server cannot be reached. ``server_answers=False`` (the device is offline)
    asks the synced users at once.
    Raises SignInLocked while the username is locked, and instead of InvalidLogin for the
    failure that locks it; InvalidLogin for wrong credentials; ServerUnreachable when the
    server cannot be reached and the device has no synced user of that name; ServerRejected
    / MalformedResponse for other server trouble (these three do not count as failures).
    """
    clock = clock or SystemClock()
    now = clock.now()
    await asyncio.to_thread(ensure_unlocked, store, username, now)
    try:
        session = await _checked(client, store, username, password, clock, deadline if server_answers else 0)
    except InvalidLogin as exc:
        locked = await asyncio.to_thread(count_failure, store, username, now)
        if locked is not None:
            raise locked from exc
        raise
    await asyncio.to_thread(count_success, store, username, now)
    return session


async def _checked(
    client: ServerClient,
    store: DeviceStore,
    username: str,
    password: str,
    clock: Clock,
    deadline: float | None,
) -> Session:
    """The session the server (or, when it cannot be reached within ``deadline`` seconds,
    0: not asked, the synced users) grants."""
    try:
        if deadline == 0:
            raise ServerUnreachable(client.base_url, "the device is offline")
        asking = client.sign_in(username, password, store.device_id)
        try:
            answer = await (asking if deadline is None else within(clock, deadline, asking))
        except TimeoutError as exc:
            raise ServerUnreachable(client.base_url, f"no answer within {deadline:g} s") from exc
    except ServerUnreachable:
        user = await asyncio.to_thread(store.user, username)
        if user is None:
            raise
        return await asyncio.to_thread(_offline_session, username, password, user)
    return Session(
        username=answer.username,
        display_name=answer.display_name,
        role=answer.role,
        server_id=answer.server_id,
        online=True,
    )


def _offline_session(username: str, password: str, user: tuple[str, str, str]) -> Session:
    password_hash, display_name, role = user
    if not password_hash:
        raise InvalidLogin()
    try:
        PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise InvalidLogin() from exc
    return Session(username=username, display_name=display_name, role=role, server_id=None, online=False)
