"""A response body read by a worker thread as it arrives, a bounded number of bytes at a time.

A full sync's biggest dataset (the reservations: ~2.3 MB of Arrow per 10,000 profiles) used to
be read whole before its first row was staged, so the device's memory grew with the ship. Here
the event loop hands the body's chunks to a :class:`BodyPipe` while a worker thread reads it as
a binary file (nanoarrow's IPC reader takes any object with ``readinto``) and stages each record batch
as it completes: at most ``PIPE_BYTES`` of body wait between them, whatever the ship.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

T = TypeVar("T")
# Body bytes the event loop may queue ahead of the reading thread before it waits.
PIPE_BYTES = 1024 * 1024


class BodyEnded(Exception):
    """The body stopped before its end (the transport failed): raised to the reading thread."""


class BodyPipe:
    """Chunks put by one writer (the event loop) and read by one reader (a worker thread).

    ``limit`` bounds the bytes queued: :meth:`offer` refuses past it and :meth:`put` waits.
    Thread-safe. Once the reader is :meth:`close`\\ d, writes are dropped (answered False).
    """

    def __init__(self, limit: int = PIPE_BYTES) -> None:
        self._limit = limit
        self._ready = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._ended = False
        self._failed = False
        self._closed = False

    # -- the writer's side -------------------------------------------------------------

    def offer(self, chunk: bytes) -> bool | None:
        """Queue ``chunk`` if it fits; None when it does not (call :meth:`put`), False when
        the reader is gone, True when queued."""
        with self._ready:
            if self._closed:
                return False
            if self._queued and self._queued + len(chunk) > self._limit:
                return None
            self._push(chunk)
            return True

    def put(self, chunk: bytes) -> bool:
        """Queue ``chunk`` once the reader has made room (blocks); False when the reader is gone."""
        with self._ready:
            self._ready.wait_for(
                lambda: self._closed or not self._queued or self._queued + len(chunk) <= self._limit
            )
            if self._closed:
                return False
            self._push(chunk)
            return True

    def _push(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._queued += len(chunk)
        self._ready.notify_all()

    def end(self, failed: bool = False) -> None:
        """No more chunks: the body is whole, or (``failed``) it broke off."""
        with self._ready:
            self._ended = True
            self._failed = failed
            self._ready.notify_all()

    # -- the reader's side -------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes of the body (all the rest when negative), fewer only at its
        end. Blocks until they arrive; raises BodyEnded when the body broke off first."""
        parts: list[bytes] = []
        wanted = size if size >= 0 else None
        while wanted is None or wanted > 0:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._chunks) or self._ended)
                if not self._chunks:
                    if self._failed:
                        raise BodyEnded("the answer broke off before its end")
                    break
                chunk = self._chunks.popleft()
                if wanted is not None and len(chunk) > wanted:
                    self._chunks.appendleft(chunk[wanted:])
                    chunk = chunk[:wanted]
                self._queued -= len(chunk)
                self._ready.notify_all()
            parts.append(chunk)
            if wanted is not None:
                wanted -= len(chunk)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (writable bytes) with the next bytes of the body: all of it, fewer
        only at its end (0 there). Blocks and raises as :meth:`read`."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """The reader is done: drop what is queued and refuse later writes."""
        with self._ready:
            self._closed = True
            self._chunks.clear()
            self._queued = 0
            self._ready.notify_all()


async def read_while_arriving(chunks: AsyncIterator[bytes], consume: Callable[[BodyPipe], T]) -> T:
    """``consume(pipe)`` run in a worker thread while the body's ``chunks`` arrive into
    ``pipe``; its result. The thread may stop reading early (the rest is dropped). A failure
    of ``chunks`` (the transport) is raised rather than what it made ``consume`` raise; a
    cancelled call ends the pipe and waits for the thread before it propagates."""
    pipe = BodyPipe()

    def run() -> T:
        try:
            return consume(pipe)
        finally:
            pipe.close()

    reading = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        async for chunk in chunks:
            queued = pipe.offer(chunk)
            if queued is None:
                queued = await asyncio.to_thread(pipe.put, chunk)
            if not queued:
                break
    except BaseException:
        pipe.end(failed=True)
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()  # retrieved: the transport's failure is the one raised
        raise
    pipe.end()
    return await reading
