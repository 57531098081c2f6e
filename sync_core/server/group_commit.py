"""Group commit: the writes that request threads ask for at the same time, done together.

Every registration upload is a write transaction, and a commit waits for the disk (an
fsync, a few milliseconds): one transaction per upload caps the server at a few hundred
uploads a second, however few rows each holds, and makes each upload wait behind all
the others. Here a thread that finds no write under way writes for every thread waiting
(its own items and all that arrived meanwhile) in one call; the others wait for their
results, and the first of those who arrived during that write writes next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiting(Generic[Item, Result]):
    def __init__(self, item: Item) -> None:
        self.item = item
        self.woken = threading.Event()
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Runs ``write(items)`` (one result per item, in order) over the items :meth:`submit`
    is given by several threads at once, one call at a time."""

    def __init__(self, write: Callable[[list[Item]], list[Result]]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Item, Result]] = []
        self._writing = False

    @property
    def waiting(self) -> int:
        """How many items wait for the write under way to end."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: Item) -> Result:
        """``item``'s result, written with whatever else waits; blocks until it is.
        Raises what ``write`` raised for the group ``item`` was written in."""
        mine: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queue.append(mine)
            leads = not self._writing
            self._writing = True
        if not leads:
            mine.woken.wait()  # written by another thread, or this one's turn to write
        if not mine.done:
            self._write_waiting()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _write_waiting(self) -> None:
        """Write every item waiting (the caller's own among them), wake their threads, and
        hand the next write to the first thread that arrived meanwhile."""
        with self._lock:
            group, self._queue = self._queue, []
        try:
            results = self._write([waiting.item for waiting in group])
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
        except BaseException as exc:  # noqa: BLE001 - each thread of the group raises it
            for waiting in group:
                waiting.error = exc
        with self._lock:
            following = self._queue[0] if self._queue else None
            self._writing = following is not None
        for waiting in group:
            waiting.done = True
            waiting.woken.set()
        if following is not None:
            following.woken.set()
