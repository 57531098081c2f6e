"""The garbage collector is settled: what lived through a settle is left out of later
collections, and what became garbage since is collected at the next settle."""

from __future__ import annotations

import gc
import weakref

from sync_core.device import collector


class Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


def tracked(obj: object) -> bool:
    """True when the next full collection walks ``obj`` (it is not frozen)."""
    return any(candidate is obj for candidate in gc.get_objects())


def test_survivors_of_a_settle_are_left_out_of_later_collections() -> None:
    before = Node()
    assert tracked(before)
    assert collector.settle() > 0
    after = Node()
    assert not tracked(before)
    assert tracked(after)


def test_a_frozen_cycle_that_became_garbage_is_collected_at_the_next_settle() -> None:
    node = Node()
    gone = weakref.ref(node)
    collector.settle()
    del node
    gc.collect()
    assert gone() is not None  # frozen: a collection leaves it alone
    collector.settle()
    assert gone() is None
