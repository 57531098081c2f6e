"""Registering people at a muster station (or lifeboat): what the Register screen and
``muster register`` do with a card scan or a chosen profile (issue 4; rules in
:mod:`sync_core.muster`).

Two ways to the data, one behaviour:

- A device that has completed a full sync looks people up in its own store and commits
  each registration to the outbox before answering (invariant 5); the uploader sends it.
  Station counts come from the server while it answers (every device's registrations),
  else from this device's own registrations, and say which.
- A device that never completed a full sync works **online only**: lookups, counts and
  registrations go straight to the server, and when it cannot be reached the error says
  so; nothing is pretended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from enum import StrEnum
from typing import Protocol, TypeVar

import uuid6

from sync_core import muster
from sync_core.clock import Clock
from sync_core.device.client import ServerClient
from sync_core.device.session import Session
from sync_core.device.store import DeviceStore
from sync_core.errors import ServerRejected, ServerUnreachable, UnknownPlace
from sync_core.muster import AssemblyHandling, BadCard, Counts, Person, Place, Standing, Verdict
from sync_core.protocol import ItemOutcome, Registration, RegistrationAction, SafetyMode

T = TypeVar("T")


class Result(StrEnum):
    """What became of a scan or a Register / Unregister (``muster register``'s words)."""

    REGISTERED = "registered"
    ALREADY_REGISTERED = "already registered"
    REFUSED = "refused"
    UNKNOWN_CARD = "unknown card"
    ASK = "ask"
    UNREGISTERED = "unregistered"
    NOT_REGISTERED = "not registered"


@dataclass(frozen=True)
class Outcome:
    """The answer to one scan or action: ``person`` found (None for an unknown card),
    their ``standing`` after it, the new ``registration_id`` if one was recorded, and a
    ``reason`` for crew to read (refusals, a bad card)."""

    result: Result
    person: Person | None = None
    standing: Standing | None = None
    registration_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Post:
    """Who registers where: the signed-in ``username``, the safety ``mode``, the ``place``
    (muster station or lifeboat code), the ``clock`` stamping registrations and the
    offset ``tz`` they are stamped in (None: the device's local time zone)."""

    username: str
    mode: SafetyMode
    place: str
    clock: Clock
    tz: tzinfo | None = None


@dataclass(frozen=True)
class StationCounts:
    """:class:`~sync_core.muster.Counts` and whether they are live from the server
    (every device) or this device's own (offline)."""

    counts: Counts
    live: bool


class Book(Protocol):
    """Where people, stations and registrations are looked up."""

    async def places(self, mode: SafetyMode) -> list[Place]: ...
    async def find_card(self, card: str) -> Person | None: ...
    async def search(self, text: str, limit: int) -> list[Person]: ...
    async def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None: ...
    async def counts(self, mode: SafetyMode, place: str, missing_limit: int) -> Counts: ...
    async def parameter(self, name: str) -> str | None: ...


class LocalBook:
    """Lookups in the device store (each in a worker thread with its own cursor)."""

    def __init__(self, store: DeviceStore) -> None:
        self.store = store

    async def _run(self, query: Callable[..., T], *args: object) -> T:
        def run() -> T:
            with self.store.db.cursor() as cur:
                return query(cur, *args)

        return await asyncio.to_thread(run)

    async def places(self, mode: SafetyMode) -> list[Place]:
        """See :func:`sync_core.muster.places`."""
        return await self._run(muster.places, mode)

    async def find_card(self, card: str) -> Person | None:
        """See :func:`sync_core.muster.find_card`."""
        return await self._run(muster.find_card, card)

    async def search(self, text: str, limit: int) -> list[Person]:
        """See :func:`sync_core.muster.search`."""
        return await self._run(muster.search, text, limit)

    async def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None:
        """See :func:`sync_core.muster.standing` (this device's registrations)."""
        return await self._run(muster.standing, profile_id, mode)

    async def counts(self, mode: SafetyMode, place: str, missing_limit: int) -> Counts:
        """See :func:`sync_core.muster.counts` (this device's registrations)."""
        return await self._run(muster.counts, mode, place, missing_limit)

    async def parameter(self, name: str) -> str | None:
        """See :func:`sync_core.muster.parameter`."""
        return await self._run(muster.parameter, name)


async def device_data_for(store: DeviceStore, client: ServerClient, session: Session) -> str | None:
    """The server id whose data the device store holds for ``session`` (that of the
    session's server, or any when the session is offline), or None when lookups must go
    to the server (online only). Raises ServerUnreachable when the device never synced
    and the session is offline: there is nowhere to look."""
    point = await asyncio.to_thread(store.sync_point)
    if point is not None and session.server_id in (None, point.server_id):
        return point.server_id
    if not session.online:
        raise ServerUnreachable(client.base_url, "this device has no synced data to work offline")
    return None


def _handling(value: str | None) -> AssemblyHandling:
    try:
        return AssemblyHandling(int(value or AssemblyHandling.ASK))
    except ValueError:
        return AssemblyHandling.ASK


async def default_mode(book: Book) -> SafetyMode:
    """The general parameter ``safety_mode``; general assembly when unset or unknown."""
    value = await book.parameter("safety_mode")
    return SafetyMode(value) if value in SafetyMode.__members__ else SafetyMode.GENASS


class Registrar:
    """Registers people for ``post`` on the device ``device_id``.

    Build it with :meth:`on_device` or :meth:`online_only`. ``record`` stores one
    registration (outbox, or straight to the server) and raises SyncError when it could
    not; ``tally`` gives counts; ``handling`` is the assembly handling mode in force.
    """

    def __init__(
        self,
        book: Book,
        record: Callable[[Registration], Awaitable[None]],
        tally: Callable[[SafetyMode, str, int], Awaitable[StationCounts]],
        post: Post,
        device_id: str,
        handling: AssemblyHandling,
    ) -> None:
        self.book = book
        self._record = record
        self._tally = tally
        self.post = post
        self.mode = post.mode
        self.place = post.place
        self.device_id = device_id
        self.handling = handling
        self.on_store = isinstance(book, LocalBook)  # False: online only

    @classmethod
    async def on_device(
        cls,
        store: DeviceStore,
        client: ServerClient | None,
        server_id: str,
        queued: Callable[[], None],
        post: Post,
    ) -> Registrar:
        """A registrar over the synced device store: registrations go to the outbox bound to
        ``server_id`` and ``queued()`` is called after each (it kicks the uploader);
        counts are live from ``client`` while the server answers."""
        book = LocalBook(store)

        async def record(registration: Registration) -> None:
            await asyncio.to_thread(store.outbox.add, registration, server_id)
            queued()

        async def tally(mode: SafetyMode, place: str, limit: int) -> StationCounts:
            if client is not None and client.token:
                try:
                    return StationCounts(await client.counts(mode, place, limit), live=True)
                except ServerUnreachable:
                    pass
            return StationCounts(await book.counts(mode, place, limit), live=False)

        return await cls._opened(book, record, tally, post, store.device_id)

    @classmethod
    async def online_only(cls, client: ServerClient, device_id: str, post: Post) -> Registrar:
        """A registrar for a device that never completed a full sync: everything goes to
        the server behind ``client`` (signed in). Raises ServerUnreachable when it does not
        answer."""
        book: Book = client

        async def record(registration: Registration) -> None:
            result = (await client.post_registrations([registration])).results
            if not result or result[0].outcome not in (ItemOutcome.APPLIED, ItemOutcome.ALREADY_APPLIED):
                reason = result[0].reason if result else "no answer for the registration"
                raise ServerRejected(result[0].status if result else 500, reason or "refused")

        async def tally(mode: SafetyMode, place: str, limit: int) -> StationCounts:
            return StationCounts(await client.counts(mode, place, limit), live=True)

        return await cls._opened(book, record, tally, post, device_id)

    @classmethod
    async def _opened(
        cls,
        book: Book,
        record: Callable[[Registration], Awaitable[None]],
        tally: Callable[[SafetyMode, str, int], Awaitable[StationCounts]],
        post: Post,
        device_id: str,
    ) -> Registrar:
        if post.place not in {place.code for place in await book.places(post.mode)}:
            raise UnknownPlace(post.place, "lifeboat" if post.mode.by_lifeboat else "muster station")
        handling = _handling(await book.parameter("assembly_handling_mode"))
        return cls(book, record, tally, post, device_id, handling)

    @classmethod
    async def for_session(
        cls,
        store: DeviceStore,
        client: ServerClient,
        session: Session,
        queued: Callable[[], None],
        post: Post,
    ) -> Registrar:
        """The registrar for ``session``: over the device store when it holds the data of
        the session's server (or the session is offline), else online only.

        Raises UnknownPlace for a code the data lacks, ServerUnreachable when the device
        never synced and the server does not answer, other SyncErrors from the server.
        """
        server_id = await device_data_for(store, client, session)
        if server_id is not None:
            live = client if session.online else None
            return await cls.on_device(store, live, server_id, queued, post)
        return await cls.online_only(client, store.device_id, post)

    async def scan(self, text: str, *, force: bool = False) -> Outcome:
        """Register the holder of the card number ``text`` (as the reader typed it).

        An unknown or malformed card is ``UNKNOWN_CARD`` with the reason; otherwise see
        :meth:`register`. Raises SyncError when the registration could not be recorded.
        """
        try:
            card = muster.card_number(text)
        except BadCard as exc:
            return Outcome(Result.UNKNOWN_CARD, reason=str(exc))
        person = await self.book.find_card(card)
        if person is None:
            return Outcome(Result.UNKNOWN_CARD, reason=f"No profile has card {card}")
        return await self.register(person, force=force)

    async def register(self, person: Person, *, force: bool = False) -> Outcome:
        """Register ``person`` here, as the rules allow.

        Already registered here: ``ALREADY_REGISTERED`` with where and when. From another
        station: ``REFUSED`` under handling 3, ``ASK`` under handling 2 unless ``force``.
        Otherwise the registration is recorded (committed before this returns) and the
        result is ``REGISTERED``. Raises SyncError when it could not be recorded.
        """
        standing = await self.book.standing(person.profile_id, self.mode)
        if standing is not None and standing.place == self.place:
            return Outcome(Result.ALREADY_REGISTERED, person, standing)
        judged = muster.verdict(person, self.mode, self.place, self.handling)
        own = person.assigned_place(self.mode) or "none"
        if judged is Verdict.REFUSE:
            return Outcome(Result.REFUSED, person, standing, reason=f"Assigned to {own}, not {self.place}")
        if judged is Verdict.ASK and not force:
            return Outcome(Result.ASK, person, standing, reason=f"Assigned to {own}, not {self.place}")
        registration = await self._write(person, RegistrationAction.REGISTER)
        at = registration.registered_at.isoformat()
        mine = Standing(self.place, at, self.post.username, registration.registration_id)
        return Outcome(Result.REGISTERED, person, mine, registration.registration_id)

    async def unregister(self, person: Person) -> Outcome:
        """Take back ``person``'s registration here; ``NOT_REGISTERED`` when they are not
        registered here. Raises SyncError when it could not be recorded."""
        standing = await self.book.standing(person.profile_id, self.mode)
        if standing is None or standing.place != self.place:
            return Outcome(Result.NOT_REGISTERED, person, standing)
        registration = await self._write(person, RegistrationAction.UNREGISTER)
        return Outcome(Result.UNREGISTERED, person, None, registration.registration_id)

    async def counts(self, missing_limit: int = muster.MISSING_LIMIT) -> StationCounts:
        """This place's counts in this mode (live, or this device's own when offline)."""
        return await self._tally(self.mode, self.place, missing_limit)

    async def _write(self, person: Person, action: RegistrationAction) -> Registration:
        place = {"lifeboat" if self.mode.by_lifeboat else "muster_station": self.place}
        registration = Registration(
            registration_id=str(uuid6.uuid7()),
            profile_id=person.profile_id,
            action=action,
            safety_mode=self.mode,
            registered_at=self.post.clock.now().astimezone(self.post.tz),
            username=self.post.username,
            device_id=self.device_id,
            **place,
        )
        await self._record(registration)
        return registration
