"""A body read by a worker thread while it arrives: record batches decode before the body
ends, a reader that stops early ends the transfer, a body that breaks off raises the
transport's error and leaves no thread waiting."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pyarrow as pa
import pyarrow.ipc
import pytest

from sync_core.device.arrow_rows import ArrowStream
from sync_core.device.body_pipe import PIPE_BYTES, BodyPipe, read_while_arriving

CHUNK = 64 * 1024
BATCHES = 8


def _stream() -> bytes:
    """An Arrow stream of ``BATCHES`` batches, about four times ``PIPE_BYTES`` in all."""
    rows = PIPE_BYTES // 2 // 64
    batch = pa.record_batch({"id": [f"{n:063d}" for n in range(rows)]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        for _ in range(BATCHES):
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _read(pipe: BodyPipe) -> ArrowStream:
    """The device's reader of the Arrow stream arriving in ``pipe``."""
    return ArrowStream(pipe, ("id",), "the test body")


class Body:
    """The chunks of ``data``, counting how many were handed over; breaks off (OSError)
    after ``fail_after`` chunks when given."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data = data
        self.fail_after = fail_after
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.data), CHUNK):
            if self.sent == self.fail_after:
                raise OSError("connection reset")
            self.sent += 1
            yield self.data[at : at + CHUNK]

    @property
    def total(self) -> int:
        return -(-len(self.data) // CHUNK)


async def test_batches_are_read_while_the_body_arrives() -> None:
    body = Body(_stream())
    seen_at: list[int] = []

    def consume(pipe: BodyPipe) -> int:
        rows = 0
        for batch in _read(pipe):
            seen_at.append(body.sent)
            rows += batch.num_rows
        return rows

    rows = await read_while_arriving(body.chunks(), consume)
    assert rows == BATCHES * (PIPE_BYTES // 2 // 64)
    assert len(seen_at) == BATCHES
    assert seen_at[0] < body.total // 2  # the first batch long before the body's end
    assert max(seen_at) - min(seen_at) > 0


async def test_a_reader_that_stops_early_ends_the_transfer() -> None:
    body = Body(_stream())

    def first_batch(pipe: BodyPipe) -> int:
        return next(iter(_read(pipe))).num_rows

    assert await read_while_arriving(body.chunks(), first_batch) > 0
    assert body.sent < body.total


async def test_a_body_that_breaks_off_raises_the_transport_error() -> None:
    body = Body(_stream(), fail_after=3)
    finished = threading.Event()

    def consume(pipe: BodyPipe) -> int:
        try:
            return sum(batch.num_rows for batch in _read(pipe))
        finally:
            finished.set()

    with pytest.raises(OSError, match="connection reset"):
        await read_while_arriving(body.chunks(), consume)
    assert finished.is_set()  # the reading thread did not stay waiting for more
