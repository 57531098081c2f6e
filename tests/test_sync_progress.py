"""A full sync's progress meter: figures against the totals and the time left, on a clock
the test moves (records and portraits have rates of their own)."""

from __future__ import annotations

from sync_core.device.progress import FullSyncMeter


def test_time_left_follows_each_kind_at_its_own_rate() -> None:
    now = [100.0]
    meter = FullSyncMeter(lambda: now[0], records_total=1000, portraits_total=300)
    assert meter.records_fetched(0).seconds_left is None  # no rate yet
    now[0] += 1.0
    progress = meter.records_fetched(500)
    assert (progress.records, progress.seconds_left) == (500, None)  # the portraits have no rate yet
    now[0] += 1.0
    meter.records_fetched(500)
    progress = meter.portraits_to_fetch(200)  # the device held 100 of the 300
    assert (progress.portraits_total, progress.seconds_left) == (200, None)
    now[0] += 5.0
    progress = meter.portraits_fetched(50)  # 10 portraits a second: 150 left
    assert progress.seconds_left == 15.0
    assert progress.summary() == "Records 1,000 of 1,000 · Portraits 50 of 200 · about 15 s left"
    assert meter.portraits_fetched(150).seconds_left == 0.0


def test_nothing_to_fetch_is_done() -> None:
    meter = FullSyncMeter(lambda: 0.0, records_total=0, portraits_total=0)
    progress = meter.portraits_to_fetch(0)
    assert progress.seconds_left == 0.0
    assert progress.summary().endswith("about 0 s left")
