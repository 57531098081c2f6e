"""Signing a crew member in on the device.

The server checks the credentials when it answers; when it cannot be reached, the users
synced to the device are checked instead, so mustering can go on offline after one
successful full sync. Offline, a password is right when it opens its user's synced key slot;
either way the data key from the slot unlocks the store (docs/security.md). Either way the
device's lockout applies (:mod:`sync_core.device.sign_in_rules`): a locked username is
refused before any check, a refused sign-in counts towards the lockout, and a successful one
resets the count and marks the device as in use (the retention count restarts).

Under load (every handheld signing in at the alarm) a crew member synced to the device does
not wait for the server: when it has not answered within ``SYNCED_USER_WAIT`` seconds, they
are signed in offline at once, and the app joins the server in the background.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel

from sync_core.clock import Clock, SystemClock
from sync_core.device.client import ServerClient
from sync_core.device.sign_in_rules import count_failure, count_success, ensure_unlocked
from sync_core.device.store import DeviceStore
from sync_core.errors import InvalidLogin, ServerUnreachable
from sync_core.key_slots import SlotRefused, open_slot

log = logging.getLogger(__name__)
SYNCED_USER_WAIT = 2.0


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
    synced_wait: float | None = SYNCED_USER_WAIT,
    server_answers: bool = True,
) -> Session:
    """Sign ``username`` in with the server, or offline against the synced users.

    ``clock`` (default the system clock) times the lockout and the device's last use.
    ``synced_wait``: seconds to wait for the server when ``username`` is synced to the
    device before signing in offline (None: the client's whole sign-in deadline, for a
    background join or a headless sync that needs the server). ``server_answers=False``
    (the device knows it is offline) asks the synced users at once.
    Raises SignInLocked while the username is locked, and instead of InvalidLogin for the
    failure that locks it; InvalidLogin for wrong credentials; ServerUnreachable when the
    server cannot be reached and the device has no synced user of that name; ServerRejected
    / MalformedResponse for other server trouble (these three do not count as failures).
    """
    now = (clock or SystemClock()).now()
    await asyncio.to_thread(ensure_unlocked, store, username, now)
    try:
        session = await _checked(client, store, username, password, synced_wait, server_answers)
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
    synced_wait: float | None,
    server_answers: bool,
) -> Session:
    """The session the server (or, when it does not answer in time, the synced users) grants;
    the store is unlocked with the user's key slot either way (docs/security.md)."""
    user = await asyncio.to_thread(store.user, username)
    try:
        if not server_answers:
            raise ServerUnreachable(client.base_url, "the device is offline")
        if user is None or synced_wait is None:
            answer = await client.sign_in(username, password, store.device_id)
        else:
            answer = await client.sign_in(username, password, store.device_id, within=synced_wait)
    except ServerUnreachable:
        if user is None:
            raise
        return await asyncio.to_thread(_offline_session, store, username, password, user)
    if answer.key_slot is None:
        log.warning("the server gave no key slot for user %s: the device's data stays locked", username)
    else:
        store.unlock(await asyncio.to_thread(_opened, answer.key_slot, password))
    return Session(
        username=answer.username,
        display_name=answer.display_name,
        role=answer.role,
        server_id=answer.server_id,
        online=True,
    )


def _opened(slot: str, password: str) -> bytes:
    """The data key in ``slot``. Raises InvalidLogin when ``password`` does not open it."""
    try:
        return open_slot(slot, password)
    except SlotRefused as exc:
        raise InvalidLogin() from exc


def _offline_session(
    store: DeviceStore, username: str, password: str, user: tuple[str | None, str, bytes]
) -> Session:
    """Opening the synced user's key slot is the password check: a wrong password opens
    nothing (the slot's GCM tag fails)."""
    key_slot, role, sealed = user
    if not key_slot:
        raise InvalidLogin()
    store.unlock(_opened(key_slot, password))
    display_name = store.sealer.open_fields("users", username, sealed)["display_name"]
    return Session(username=username, display_name=display_name, role=role, server_id=None, online=False)
