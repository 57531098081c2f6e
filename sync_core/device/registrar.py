"""Registering people at a muster station (or lifeboat): what the Register screen and
``muster register`` do with a card scan or a chosen profile (rules in
:mod:`sync_core.muster`).

Two ways to the data, one behaviour:

- A device that has completed a full sync looks people up in its own store (in memory once loaded:
  :mod:`~sync_core.device.people`, :mod:`~sync_core.device.standings`) and commits each registration
  to the outbox before answering (docs/architecture.md, 'Every registration is uploaded exactly
  once'); the uploader sends it. A scan makes one trip to a worker thread: the rules and the insert
  with its commit. Station counts come from the server while it answers (every device's
  registrations), else from this device's own registrations, and say which.
- A device that never completed a full sync works **online only**: lookups, counts and
  registrations go straight to the server, and when it cannot be reached the error says
  so; nothing is pretended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol, TypeVar

import uuid6

from sync_core import muster
from sync_core.clock import Clock, within
from sync_core.device.client import INTERACTIVE_DEADLINE, ServerClient
from sync_core.device.people import People
from sync_core.device.session import Session
from sync_core.device.standings import Standings
from sync_core.device.store import DeviceStore
from sync_core.errors import BadCard, ServerRejected, ServerUnreachable, UnknownPlace
from sync_core.muster import AssemblyHandling, Counts, Person, Place, Standing, Verdict
from sync_core.protocol import ItemOutcome, Registration, RegistrationAction, SafetyMode

T = TypeVar("T")
# Counts are "live" (from the server) only while its last answer is younger than this.
LIVE_FOR = timedelta(seconds=10)


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
    (every device) or this device's own (offline); when they are the device's own,
    ``since`` is when the server last answered (None: not known to have answered)."""

    counts: Counts
    live: bool
    since: datetime | None = None


class Book(Protocol):
    """Where people, stations and registrations are looked up."""

    async def places(self, mode: SafetyMode) -> list[Place]: ...
    async def find_card(self, card: str) -> Person | None: ...
    async def search(self, text: str, limit: int) -> list[Person]: ...
    async def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None: ...
    async def counts(self, mode: SafetyMode, place: str, missing_limit: int) -> Counts: ...
    async def parameter(self, name: str) -> str | None: ...


Decision = tuple[Outcome, Registration | None]
"""What the rules make of an action given the person's standing: the outcome, and the
registration to record for it (None: nothing to record)."""

Decide = Callable[[Standing | None], Decision]
"""Decides an action from the standing it is given (pure: any thread may call it)."""


class Recorder(Protocol):
    """Where registrations are recorded (the outbox, or the server for an online-only device)."""

    async def __call__(self, profile_id: str, mode: SafetyMode, decide: Decide) -> Outcome:
        """Look up ``profile_id``'s standing in ``mode``, ``decide``, record the registration
        decided, if any (committed before this returns), and return the outcome decided.
        Raises SyncError when it could not be recorded."""
        ...


class LocalBook:
    """Lookups in the device store: card numbers, searches and the missing people's names from
    the store's :class:`~sync_core.device.people.People` (loaded at the first need, or ahead by
    :meth:`load`; the names are sealed in the file), standings from its
    :class:`~sync_core.device.standings.Standings`, the rest by a query; anything that reads
    the store runs in a worker thread with its own cursor."""

    def __init__(self, store: DeviceStore) -> None:
        self.store = store
        self._people = store.view(People)
        self._standings = store.view(Standings)

    async def load(self, mode: SafetyMode) -> None:
        """Load the people (~150 ms for 10,000 profiles) and the standings in ``mode`` into
        memory in a worker thread, unless they are already: do it ahead of the scans.
        Raises ``duckdb.Error``."""
        people, standings = self._people.get(), self._standings.get()
        if not people.loaded:
            await asyncio.to_thread(people.load)
        await asyncio.to_thread(standings.load, mode)

    async def _run(self, query: Callable[..., T], *args: object) -> T:
        def run() -> T:
            with self.store.db.cursor() as cur:
                return query(cur, *args)

        return await asyncio.to_thread(run)

    async def places(self, mode: SafetyMode) -> list[Place]:
        """See :func:`sync_core.muster.places`."""
        return await self._run(muster.places, mode)

    async def _loaded(self) -> People:
        """The people in memory, loaded first in a worker thread when they are not yet."""
        people = self._people.get()
        return people if people.loaded else await asyncio.to_thread(people.load)

    async def find_card(self, card: str) -> Person | None:
        """See :func:`sync_core.muster.find_card` (at once when the people are loaded)."""
        return (await self._loaded()).find_card(card)

    def search_now(self, text: str, limit: int) -> list[Person] | None:
        """:meth:`search`'s answer when it needs no wait (the people are loaded), else None."""
        people = self._people.get()
        return people.search(text, limit) if people.loaded else None

    async def search(self, text: str, limit: int) -> list[Person]:
        """See :func:`sync_core.muster.search` (at once when the people are loaded)."""
        return (await self._loaded()).search(text, limit)

    async def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None:
        """See :func:`sync_core.muster.standing` (this device's registrations, from the
        store's :class:`~sync_core.device.standings.Standings`)."""
        standings = self._standings.get()
        return await asyncio.to_thread(standings.standing, profile_id, mode)

    async def counts(self, mode: SafetyMode, place: str, missing_limit: int) -> Counts:
        """See :func:`sync_core.muster.counts` (this device's registrations; the missing
        people ordered by name in memory, where their names are open)."""
        people = await self._loaded()
        missing = people.by_name(await self._run(muster.missing_ids, mode, place), missing_limit)
        return await self._run(muster.count_figures, mode, place, missing)

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
    return SafetyMode(value) if value is not None and value in SafetyMode.__members__ else SafetyMode.GENASS


def outbox_recorder(store: DeviceStore, server_id: str, queued: Callable[[], None]) -> Recorder:
    """The recorder of a synced device: registrations go to ``store``'s outbox bound to
    ``server_id``, and ``queued()`` is called after each (it kicks the uploader). Standings
    come from the store's :class:`~sync_core.device.standings.Standings`, which notes each
    registration committed here; one trip to a worker thread decides and commits (~4 ms)."""
    standings = store.view(Standings)

    async def record(profile_id: str, mode: SafetyMode, decide: Decide) -> Outcome:
        def run() -> Decision:
            decision = decide(standings.get().standing(profile_id, mode))
            if decision[1] is not None:
                store.outbox.add(decision[1], server_id)
                # The view now kept, which a sync may have made afresh meanwhile.
                standings.get().note(decision[1])
            return decision

        outcome, registration = await asyncio.to_thread(run)
        if registration is not None:
            queued()
        return outcome

    return record


def server_recorder(client: ServerClient) -> Recorder:
    """The recorder of an online-only device: standings and registrations on the server
    behind ``client`` (signed in); a registration it does not apply raises ServerRejected."""

    async def record(profile_id: str, mode: SafetyMode, decide: Decide) -> Outcome:
        outcome, registration = decide(await client.standing(profile_id, mode))
        if registration is not None:
            result = (await client.post_registrations([registration])).results
            if not result or result[0].outcome not in (ItemOutcome.APPLIED, ItemOutcome.ALREADY_APPLIED):
                reason = result[0].reason if result else "no answer for the registration"
                raise ServerRejected(result[0].status if result else 500, reason or "refused")
        return outcome

    return record


class Registrar:
    """Registers people for ``post`` on the device ``device_id``.

    Build it with :meth:`on_device` or :meth:`online_only`. ``book`` finds people,
    ``record`` records registrations (:func:`outbox_recorder`, :func:`server_recorder`),
    ``tally`` gives counts; ``handling`` is the assembly handling mode in force.
    """

    def __init__(
        self,
        book: Book,
        record: Recorder,
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
        answered: Callable[[], datetime | None] | None = None,
    ) -> Registrar:
        """A registrar over the synced device store: registrations go to the outbox bound to
        ``server_id`` and ``queued()`` is called after each (it kicks the uploader).

        Counts are live from ``client`` while the server answers: when ``answered()`` (the
        time the server last answered, from the connectivity probes) is under ``LIVE_FOR``
        old, or always when ``answered`` is None; a request that stalls gives up after
        ``INTERACTIVE_DEADLINE`` seconds of ``post.clock``. Otherwise they are the device's
        own, saying since when the server has not answered."""
        book = LocalBook(store)

        async def tally(mode: SafetyMode, place: str, limit: int) -> StationCounts:
            last = answered() if answered is not None else None
            fresh = answered is None or (last is not None and post.clock.now() - last < LIVE_FOR)
            if client is not None and client.token and fresh:
                try:
                    counts = await within(post.clock, INTERACTIVE_DEADLINE, client.counts(mode, place, limit))
                    return StationCounts(counts, live=True)
                except (ServerUnreachable, TimeoutError):
                    pass
            return StationCounts(await book.counts(mode, place, limit), live=False, since=last)

        record = outbox_recorder(store, server_id, queued)
        return await cls._opened(book, record, tally, post, store.device_id)

    @classmethod
    async def online_only(cls, client: ServerClient, device_id: str, post: Post) -> Registrar:
        """A registrar for a device that never completed a full sync: everything goes to
        the server behind ``client`` (signed in). Raises ServerUnreachable when it does not
        answer."""

        async def tally(mode: SafetyMode, place: str, limit: int) -> StationCounts:
            return StationCounts(await client.counts(mode, place, limit), live=True)

        return await cls._opened(client, server_recorder(client), tally, post, device_id)

    @classmethod
    async def _opened(
        cls,
        book: Book,
        record: Recorder,
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
        answered: Callable[[], datetime | None] | None = None,
    ) -> Registrar:
        """The registrar for ``session``: over the device store when it holds the data of
        the session's server (or the session is offline), else online only. ``answered``
        tells when the server last answered (see :meth:`on_device`).

        Raises UnknownPlace for a code the data lacks, ServerUnreachable when the device
        never synced and the server does not answer, other SyncErrors from the server.
        """
        server_id = await device_data_for(store, client, session)
        if server_id is not None:
            live = client if session.online else None
            return await cls.on_device(store, live, server_id, queued, post, answered)
        return await cls.online_only(client, store.device_id, post)

    async def load(self) -> None:
        """Load what a scan looks up into memory ahead of the scans, when it comes from the
        device store (:meth:`LocalBook.load`); nothing online only."""
        if isinstance(self.book, LocalBook):
            await self.book.load(self.mode)

    def search_now(self, text: str, limit: int) -> list[Person] | None:
        """The book's search answer when it needs no wait (:meth:`LocalBook.search_now`),
        else None (always online only)."""
        return self.book.search_now(text, limit) if isinstance(self.book, LocalBook) else None

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

        def decide(standing: Standing | None) -> Decision:
            if standing is not None and standing.place == self.place:
                return Outcome(Result.ALREADY_REGISTERED, person, standing), None
            judged = muster.verdict(person, self.mode, self.place, self.handling)
            elsewhere = f"Assigned to {person.assigned_place(self.mode) or 'none'}, not {self.place}"
            if judged is Verdict.REFUSE:
                return Outcome(Result.REFUSED, person, standing, reason=elsewhere), None
            if judged is Verdict.ASK and not force:
                return Outcome(Result.ASK, person, standing, reason=elsewhere), None
            registration = self._registration(person, RegistrationAction.REGISTER)
            at = registration.registered_at.isoformat()
            mine = Standing(self.place, at, self.post.username, registration.registration_id)
            return Outcome(Result.REGISTERED, person, mine, registration.registration_id), registration

        return await self._record(person.profile_id, self.mode, decide)

    async def unregister(self, person: Person) -> Outcome:
        """Take back ``person``'s registration here; ``NOT_REGISTERED`` when they are not
        registered here. Raises SyncError when it could not be recorded."""

        def decide(standing: Standing | None) -> Decision:
            if standing is None or standing.place != self.place:
                return Outcome(Result.NOT_REGISTERED, person, standing), None
            registration = self._registration(person, RegistrationAction.UNREGISTER)
            return Outcome(Result.UNREGISTERED, person, None, registration.registration_id), registration

        return await self._record(person.profile_id, self.mode, decide)

    async def counts(self, missing_limit: int = muster.MISSING_LIMIT) -> StationCounts:
        """This place's counts in this mode (live, or this device's own when offline)."""
        return await self._tally(self.mode, self.place, missing_limit)

    def _registration(self, person: Person, action: RegistrationAction) -> Registration:
        """A new registration of ``person`` here, stamped now (any thread)."""
        place = {"lifeboat" if self.mode.by_lifeboat else "muster_station": self.place}
        return Registration(
            registration_id=str(uuid6.uuid7()),
            profile_id=person.profile_id,
            action=action,
            safety_mode=self.mode,
            registered_at=self.post.clock.now().astimezone(self.post.tz),
            username=self.post.username,
            device_id=self.device_id,
            **place,
        )
