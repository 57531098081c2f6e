"""Group commit: writes asked for together are done in one call, each caller gets its own
result or the group's error (sync_core/server/group_commit.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sync_core.server.group_commit import GroupCommit

WAIT = 10.0


class _Writes:
    """A write that records each group and holds the first until ``release`` is set; a
    group holding ``"bad"`` fails."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.first_started.set()
            assert self.release.wait(WAIT)
        if "bad" in items:
            raise OSError("disk full")
        return [item.upper() for item in items]


def wait_for_waiting(commits: GroupCommit, count: int) -> None:
    """Return once ``count`` items wait behind the write under way (fail after ``WAIT``)."""
    for _ in range(int(WAIT / 0.01)):
        if commits.waiting >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{commits.waiting} items wait, not {count}")


def test_what_arrives_during_a_write_is_written_next_in_one_call() -> None:
    writes = _Writes()
    commits = GroupCommit(writes)
    with ThreadPoolExecutor(4) as threads:
        first = threads.submit(commits.submit, "a")
        assert writes.first_started.wait(WAIT)
        waiting = [threads.submit(commits.submit, item) for item in ("b", "c", "d")]
        wait_for_waiting(commits, 3)
        writes.release.set()
        assert first.result(WAIT) == "A"
        assert [future.result(WAIT) for future in waiting] == ["B", "C", "D"]
    assert writes.groups[0] == ["a"]
    assert sorted(writes.groups[1]) == ["b", "c", "d"] and len(writes.groups) == 2


def test_a_failed_write_fails_its_whole_group_and_the_next_write_goes_on() -> None:
    writes = _Writes()
    writes.release.set()
    commits = GroupCommit(writes)
    commits.submit("a")
    with pytest.raises(OSError, match="disk full"):
        commits.submit("bad")
    assert commits.submit("e") == "E"
