"""Waiting on the injectable clock: an event or a sleep, a result or a timeout, and no task
left behind either way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from sync_core.clock import FrozenClock, wait_for_event_or_sleep, within


def _clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


def _others() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_an_event_set_before_the_sleep_ends_wins() -> None:
    clock, event = _clock(), asyncio.Event()
    waiting = asyncio.create_task(wait_for_event_or_sleep(event, clock, 30))
    await _settle()
    clock.advance(29)
    event.set()
    assert await waiting is True
    assert not _others()


async def test_the_sleep_ending_first_wins() -> None:
    clock, event = _clock(), asyncio.Event()
    waiting = asyncio.create_task(wait_for_event_or_sleep(event, clock, 30))
    await _settle()
    clock.advance(30)
    assert await waiting is False
    assert not _others()


async def test_no_seconds_waits_for_the_event_alone() -> None:
    clock, event = _clock(), asyncio.Event()
    waiting = asyncio.create_task(wait_for_event_or_sleep(event, clock, None))
    await _settle()
    clock.advance(10**6)
    await _settle()
    assert not waiting.done()
    event.set()
    assert await waiting is True


async def test_cancelling_the_waiter_leaves_no_task() -> None:
    clock, event = _clock(), asyncio.Event()
    waiting = asyncio.create_task(wait_for_event_or_sleep(event, clock, 30))
    await _settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not _others()


async def test_within_gives_the_result_or_times_out_and_cancels_the_work() -> None:
    clock, gate = _clock(), asyncio.Event()
    assert await within(clock, 5, asyncio.sleep(0, result="answer")) == "answer"

    cancelled = asyncio.Event()

    async def stalled() -> None:
        try:
            await gate.wait()
        finally:
            cancelled.set()

    timing_out = asyncio.create_task(within(clock, 5, stalled()))
    await _settle()
    clock.advance(5)
    with pytest.raises(TimeoutError, match="within 5 s"):
        await timing_out
    assert cancelled.is_set()
    assert not _others()


async def test_within_passes_on_the_work_s_own_error() -> None:
    async def failing() -> None:
        raise OSError("refused")

    with pytest.raises(OSError, match="refused"):
        await within(_clock(), 5, failing())
