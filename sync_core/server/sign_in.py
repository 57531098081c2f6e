"""The server's sign-in check: who may try, and argon2id on a bounded pool.

Rules (docs/security.md, "Server sign-in"):

- **Bounded pool.** Verifications run on ``workers`` threads (argon2 releases the GIL, so
  one per core); at most ``queue_max`` more wait, none behind more than ``wait_max``
  seconds of work. Past that, :class:`Busy` (the app answers 503 with ``Retry-After``).
  A waiting verification whose request is cancelled (the client disconnected or gave up)
  is dropped before it runs. A user lacking a key slot gets it made on the same worker,
  right after the check (``missing_slots.py``).
- **Equal cost.** An unknown username is verified against a dummy verifier with the current
  parameters, so it costs what a known one costs and usernames cannot be told apart by time.
- **Lockout per username.** ``max_failed_sign_ins`` failures in a row (general parameters,
  as they stand at each attempt) lock the username, known or not, for ``lockout_minutes``; a
  success clears the count; failures older than the lockout are forgotten. Checks still
  running count against the tries left (:class:`SignInGuard`).
- **Rate limit per client address.** ``ADDRESS_FAILURES_MAX`` (``SignInLimits``) failed
  sign-ins from one address, each within ``ADDRESS_LOCK`` of the one before, refuse that
  address for ``ADDRESS_LOCK``. Successful sign-ins do not count: 200 handhelds behind one
  address at the alarm are never refused for being many.

:class:`SignIn` puts them together for the endpoint.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sync_core import muster
from sync_core.clock import Clock
from sync_core.passwords import HASHER, verify
from sync_core.server.missing_slots import MissingSlots
from sync_core.server.store import ServerStore, ServerUser

SIGN_IN_QUEUE_MAX = 256
# A sign-in is not queued behind more than this many seconds of work (at the measured pace):
# under the device's 15 s read timeout, so a device is told to retry rather than left to
# time out.
SIGN_IN_WAIT_MAX = 10.0
ADDRESS_FAILURES_MAX = 30
ADDRESS_LOCK = timedelta(minutes=5)
# Usernames and addresses tracked at once; the least recently failed are forgotten first.
TRACKED_MAX = 10_000
RETRY_AFTER_MAX = 30
Result = TypeVar("Result")


class WrongCredentials(Exception):
    """Unknown username or wrong password (the answer does not say which)."""


class ClientGone(Exception):
    """The request was cancelled before its verification ran; nobody waits for an answer."""


class Busy(Exception):
    """Every worker is busy and the queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"sign-in is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class Refused(Exception):
    """A locked username or a rate-limited address: no check made, retry after
    ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInLimits:
    """Verification threads (default: one per core), how many more may wait and behind how
    many seconds of work at most, and the failed sign-ins an address may make in a row
    before it is refused for ``ADDRESS_LOCK``."""

    workers: int = 0
    queue_max: int = SIGN_IN_QUEUE_MAX
    wait_max: float = SIGN_IN_WAIT_MAX
    address_failures_max: int = ADDRESS_FAILURES_MAX

    def worker_count(self) -> int:
        """``workers``, or the number of cores when 0."""
        return self.workers or os.cpu_count() or 1


class VerificationPool:
    """``limits.worker_count()`` threads running verifications, at most ``limits.queue_max``
    waiting, none behind more than ``limits.wait_max`` seconds of work (the queue times the
    running mean of a verification). :meth:`submit` raises Busy past either. With
    ``slots``, a user whose password checks but who lacks a key slot is given one by
    ``slots`` on the same worker."""

    def __init__(self, limits: SignInLimits, slots: MissingSlots | None = None) -> None:
        self.slots = slots
        self.workers = limits.worker_count()
        self.capacity = self.workers + limits.queue_max
        self.wait_max = limits.wait_max
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sign-in")
        self._lock = threading.Lock()
        self._held = 0  # submitted and not finished (running or waiting)
        self._seconds = 0.05  # a running mean of one verification, for Retry-After

    def submit(self, username: str, password: str, store: ServerStore) -> asyncio.Future[ServerUser | None]:
        """Queue a check of ``username`` / ``password``; cancelling the returned future drops
        it while it waits. Raises Busy when the pool is full."""
        with self._lock:
            queued_behind = (self._held - self.workers + 1) * self._seconds / self.workers
            if self._held >= self.capacity or queued_behind > self.wait_max:
                raise Busy(self._retry_after())
            self._held += 1
        future = self._executor.submit(self._timed, store, username, password)
        future.add_done_callback(self._release)
        return asyncio.wrap_future(future)

    def close(self) -> None:
        """Drop what waits; running checks finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _timed(self, store: ServerStore, username: str, password: str) -> ServerUser | None:
        started = time.perf_counter()
        user = check_password(store, username, password)
        if user is not None and self.slots is not None:
            user = self.slots.given(user, password)
        with self._lock:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)
        return user

    def _release(self, _: Future[ServerUser | None]) -> None:
        with self._lock:
            self._held -= 1

    def _retry_after(self) -> int:
        """Seconds for the workers to work through what they hold (1 to RETRY_AFTER_MAX)."""
        return max(1, min(RETRY_AFTER_MAX, math.ceil(self._held * self._seconds / self.workers)))


_DUMMY_VERIFIER = HASHER.hash(secrets.token_urlsafe(16))


def check_password(store: ServerStore, username: str, password: str) -> ServerUser | None:
    """The user when ``password`` is theirs, else None; an unknown ``username`` is checked
    (as is a user without a verifier) against a dummy verifier made with the current
    parameters, so it costs the same."""
    user = store.user(username)
    real = user is not None and bool(user.password_hash)
    ok = verify(user.password_hash if user is not None and real else _DUMMY_VERIFIER, password)
    return user if ok and real else None


@dataclass(frozen=True)
class Lockout:
    """``tries`` failed sign-ins in a row lock a username for ``span``."""

    tries: int
    span: timedelta


@dataclass
class _Failures:
    count: int
    last: datetime
    locked_until: datetime | None = None


def _stale(failures: _Failures, now: datetime, lock: timedelta) -> bool:
    """True when ``failures`` no longer count: a lockout came of them, or ``lock`` passed."""
    return failures.locked_until is not None or now - failures.last >= lock


class Lockouts:
    """Failure counts per key (a username or an address), at most ``TRACKED_MAX`` keys."""

    def __init__(self) -> None:
        self._by_key: OrderedDict[str, _Failures] = OrderedDict()

    def seconds_left(self, key: str, now: datetime) -> int:
        """Whole seconds (rounded up) until ``key`` is no longer locked; 0 when it is not."""
        failures = self._by_key.get(key)
        if failures is None or failures.locked_until is None or failures.locked_until <= now:
            return 0
        return math.ceil((failures.locked_until - now).total_seconds())

    def count(self, key: str, now: datetime, lock: timedelta) -> int:
        """The failures of ``key`` that still count (0 after a lockout or a quiet ``lock``)."""
        failures = self._by_key.get(key)
        return 0 if failures is None or _stale(failures, now, lock) else failures.count

    def fail(self, key: str, now: datetime, limit: int, lock: timedelta) -> bool:
        """Count a failure of ``key``; True when it is the ``limit``-th in a row (each
        within ``lock`` of the one before), which locks ``key`` for ``lock``."""
        failures = self._by_key.pop(key, None)
        if failures is None or _stale(failures, now, lock):
            failures = _Failures(0, now)
        failures.count += 1
        failures.last = now
        if failures.count >= limit:
            failures.locked_until = now + lock
        self._by_key[key] = failures
        while len(self._by_key) > TRACKED_MAX:
            self._by_key.popitem(last=False)
        return failures.locked_until is not None

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (a successful sign-in)."""
        self._by_key.pop(key, None)


class SignInGuard:
    """The lockout per username and the rate limit per address over ``store``'s general
    parameters and ``clock``. Used from the event loop only (not thread-safe).

    Checks in flight count against a username's lockout: an attempt is let through only
    while its failures so far plus the checks still running stay under
    ``max_failed_sign_ins``, so guesses sent side by side get no more tries than guesses
    sent one after another (the others are asked to retry shortly).
    """

    def __init__(
        self, store: ServerStore, clock: Clock, address_failures_max: int = ADDRESS_FAILURES_MAX
    ) -> None:
        self.store = store
        self.clock = clock
        self.address_failures_max = address_failures_max
        self._usernames = Lockouts()
        self._addresses = Lockouts()
        self._checking: Counter[str] = Counter()
        self._read_at: tuple[int, Lockout] | None = None  # the feed's last change, the lockout then

    async def admit(self, username: str, address: str) -> Lockout:
        """Let one attempt through and return the lockout in force; raise Refused while
        ``username`` is locked or ``address`` rate-limited, Busy while ``username`` has as
        many checks running as it has tries left. Call :meth:`done` after the check."""
        now = self.clock.now()
        left = self._addresses.seconds_left(address, now)
        if left:
            raise Refused(f"Too many failed sign-ins from this address: try again in {left} s", left)
        left = self._usernames.seconds_left(username, now)
        if left:
            minutes = math.ceil(left / 60)
            raise Refused(f"Too many failed sign-ins: this user is locked for {minutes} min", left)
        lockout = await self._lockout()
        if self._usernames.count(username, now, lockout.span) + self._checking[username] >= lockout.tries:
            raise Busy(1)
        self._checking[username] += 1
        return lockout

    def done(self, username: str, address: str, lockout: Lockout, ok: bool | None) -> None:
        """The attempt admitted for ``username`` from ``address`` ended: ``ok`` True clears
        the username's failures, False counts one failure for both, None (no check ran)
        counts nothing."""
        self._checking[username] -= 1
        if self._checking[username] <= 0:
            del self._checking[username]
        if ok is None:
            return
        if ok:
            self._usernames.clear(username)
            return
        now = self.clock.now()
        self._usernames.fail(username, now, lockout.tries, lockout.span)
        self._addresses.fail(address, now, self.address_failures_max, ADDRESS_LOCK)

    async def _lockout(self) -> Lockout:
        """The lockout the general parameters set, read again only after the change feed
        moved (a parameter changes only by an office edit, which moves it)."""
        latest = self.store.feed_bounds()[1]
        if self._read_at is None or self._read_at[0] != latest:
            self._read_at = (latest, await asyncio.to_thread(self._read_lockout))
        return self._read_at[1]

    def _read_lockout(self) -> Lockout:
        with self.store.db.cursor() as cur:
            tries = muster.whole_parameter(
                cur, muster.MAX_FAILED_SIGN_INS, muster.DEFAULT_MAX_FAILED_SIGN_INS
            )
            minutes = muster.whole_parameter(cur, muster.LOCKOUT_MINUTES, muster.DEFAULT_LOCKOUT_MINUTES)
        return Lockout(tries, timedelta(minutes=minutes))


class SignIn:
    """The server's sign-in check over ``store``: the guard, then the pool (module docstring)."""

    def __init__(self, store: ServerStore, clock: Clock, limits: SignInLimits) -> None:
        self.store = store
        self.slots = MissingSlots(store)
        self.pool = VerificationPool(limits, self.slots)
        self.guard = SignInGuard(store, clock, limits.address_failures_max)

    async def check(
        self, username: str, password: str, address: str, gone: Callable[[], Awaitable[None]]
    ) -> ServerUser:
        """The user whose password this is. ``gone()`` completes when the client
        disconnects: a verification still waiting then is dropped.

        Raises Refused (locked username, rate-limited address), Busy (pool full),
        WrongCredentials, ClientGone.
        """
        lockout = await self.guard.admit(username, address)
        verdict: bool | None = None  # None: no check ran (pool full, client gone)
        try:
            user = await _unless(gone, self.pool.submit(username, password, self.store))
            verdict = user is not None
        finally:
            self.guard.done(username, address, lockout, verdict)
        if user is None:
            raise WrongCredentials()
        return user

    def close(self) -> None:
        """Stop the pool and store the key slots it made (server shutdown)."""
        self.pool.close()
        self.slots.close()


async def _unless(gone: Callable[[], Awaitable[None]], pending: asyncio.Future[Result]) -> Result:
    """``pending``'s result, unless ``gone()`` completes first: then ``pending`` is cancelled
    (dropped if it has not started) and ClientGone raised. Cancelling the caller cancels
    ``pending`` too. ``gone()`` is called here, once ``pending`` exists: a submission
    refused at once (Busy) leaves no watcher behind, never awaited."""
    watcher = asyncio.ensure_future(gone())
    either: list[asyncio.Future[Any]] = [pending, watcher]
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not pending.done():
            pending.cancel()
    if pending.cancelled():
        raise ClientGone()
    return pending.result()
