"""Queries over the whole ship's muster on the embedded DuckDB store, under its memory limit:
a drill report over 50,000 people's registrations fits (the registrations here name profiles
the small ship does not hold, as after a deletion: each person's latest event is still
found for every one of them), and such reads run one at a time (two or three side by side
ran out of memory)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sync_core.protocol import SafetyMode
from sync_core.server.report import MISSING, read_report
from sync_core.server.store import ServerStore

DRILL = 50_000


def test_a_drill_report_of_a_big_ship_fits_the_stores_memory_limit(server_store: ServerStore) -> None:
    with server_store.log_write() as cur:  # everyone of a 50,000-profile ship registered once
        cur.execute(
            "INSERT INTO registrations (registration_id, profile_id, action, safety_mode, muster_station, "
            "registered_at, registered_utc, username, device_id, received_at, uploaded_by) "
            "SELECT md5('r' || i), md5('p' || i), 'register', 'GENASS', 'A', '2026-12-06T10:00:00+00:00', "
            "TIMESTAMP '2026-12-06 10:00:00' + to_seconds(i % 600), 'demo', 'd' || i % 200, "
            "TIMESTAMP '2026-12-06 10:10:00', 'demo' FROM range(?) AS t(i)",
            [DRILL],
        )
    with server_store.whole_ship_read() as cur:
        report = read_report(cur, SafetyMode.GENASS, None, datetime.now(UTC))
        on_board = cur.execute(
            "SELECT count(*) FROM reservations "
            "WHERE movement_status = 'Onboard' AND muster_station IS NOT NULL"
        ).fetchall()[0][0]
    # the registrations name profiles the ship no longer holds: every one on board is missing
    assert on_board > 0
    assert report.total(MISSING) == len(report.rows) == on_board


def test_whole_ship_reads_run_one_at_a_time(server_store: ServerStore) -> None:
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with server_store.whole_ship_read():
            first_in.set()
            release.wait(10)

    def second() -> None:
        with server_store.whole_ship_read():
            second_in.set()

    holder, waiter = threading.Thread(target=first), threading.Thread(target=second)
    holder.start()
    assert first_in.wait(10)
    waiter.start()
    assert not second_in.wait(0.5)  # waits while the first read runs
    release.set()
    assert second_in.wait(10)
    holder.join(10)
    waiter.join(10)
