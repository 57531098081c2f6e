"""What the bridge's dashboard shows, read from the server store in one transaction.

The counts follow the shared muster rules (``sync_core.muster``): a person's standing in a
safety mode is their latest registration event in it, and a station (lifeboat in abandon
ship) is assigned the people on board who name it. Per station the dashboard splits the
assigned into registered here, registered at another station and not yet registered, so
those three add up to the assigned; people registered here who belong elsewhere are shown
apart, so the ship's total counts every person on board once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from sync_core import muster
from sync_core.duck import aware_utc
from sync_core.muster import PERSON_SELECT, Person, Place
from sync_core.protocol import SafetyMode

MISSING_SHOWN = 200
SEARCH_MAX = 100
CACHED_VIEWS = 32


@dataclass(frozen=True)
class StationTally:
    """One muster station (lifeboat in abandon ship) in one safety mode.

    ``assigned`` = ``registered`` (here) + ``elsewhere`` (at another station) + ``missing``;
    ``visitors`` are people registered here whose own station is another one.
    """

    place: Place
    assigned: int
    registered: int
    elsewhere: int
    missing: int
    visitors: int

    @property
    def percent(self) -> int:
        """Share of the assigned accounted for (registered anywhere), 0-100."""
        if not self.assigned:
            return 100
        return round(100 * (self.registered + self.elsewhere) / self.assigned)


@dataclass(frozen=True)
class Handheld:
    """A device that uploaded registrations: by whom, when last (aware UTC), how many."""

    device_id: str
    username: str
    last_upload: datetime
    registrations: int


@dataclass(frozen=True)
class Muster:
    """The dashboard's live part for one safety mode."""

    mode: SafetyMode
    stations: list[StationTally]
    missing: list[Person]
    missing_total: int
    handhelds: list[Handheld]

    @property
    def assigned(self) -> int:
        """People on board with a station (lifeboat) in this mode."""
        return sum(s.assigned for s in self.stations)

    @property
    def registered(self) -> int:
        """People on board registered at any station."""
        return sum(s.registered + s.elsewhere for s in self.stations)

    @property
    def not_registered(self) -> int:
        """People on board registered nowhere: the missing."""
        return sum(s.missing for s in self.stations)


def read_muster(cur: duckdb.DuckDBPyConnection, mode: SafetyMode, search: str = "") -> Muster:
    """Station tallies, the missing (those matching ``search``, at most ``MISSING_SHOWN``, by
    name) and the handhelds' uploads in ``mode``; run it in one transaction."""
    missing, total = _missing(cur, mode, search[:SEARCH_MAX])
    return Muster(mode, _stations(cur, mode), missing, total, _handhelds(cur))


def _own(mode: SafetyMode) -> str:
    return "lifeboat" if mode.by_lifeboat else "muster_station"


def _stations(cur: duckdb.DuckDBPyConnection, mode: SafetyMode) -> list[StationTally]:
    own = _own(mode)
    rows = cur.execute(
        f"WITH latest AS ({muster.latest_events(mode)}), "
        "reg AS (SELECT * FROM latest WHERE action = 'register'), "
        f'assigned AS (SELECT r."{own}" AS code, count(*) AS assigned, '
        f' count(*) FILTER (WHERE reg.place = r."{own}") AS registered, '
        f' count(*) FILTER (WHERE reg.place <> r."{own}") AS elsewhere '
        " FROM reservations r LEFT JOIN reg USING (profile_id) "
        " WHERE r.movement_status = 'Onboard' GROUP BY 1), "
        "visitors AS (SELECT reg.place AS code, count(*) AS visitors FROM reg "
        f' JOIN reservations r USING (profile_id) WHERE r."{own}" IS DISTINCT FROM reg.place GROUP BY 1) '
        "SELECT code, coalesce(a.assigned, 0), coalesce(a.registered, 0), coalesce(a.elsewhere, 0), "
        "coalesce(v.visitors, 0) FROM assigned a FULL JOIN visitors v USING (code)"
    ).fetchall()
    found = {row[0]: row[1:] for row in rows}
    tallies = []
    for place in muster.places(cur, mode):
        assigned, registered, elsewhere, visitors = found.get(place.code, (0, 0, 0, 0))
        missing = assigned - registered - elsewhere
        tallies.append(StationTally(place, assigned, registered, elsewhere, missing, visitors))
    return tallies


def _missing(cur: duckdb.DuckDBPyConnection, mode: SafetyMode, search: str) -> tuple[list[Person], int]:
    """The missing whose name, cabin, card number or station starts with ``search`` (any
    case; all of them when empty): the first ``MISSING_SHOWN`` by name, and how many match."""
    own = _own(mode)
    fields = ("first_name", "last_name", "cabin", "board_card_number", own)
    match = " OR ".join(f'starts_with(lower(r."{name}"), $1)' for name in fields)
    where = (
        f"r.movement_status = 'Onboard' AND r.\"{own}\" IS NOT NULL "
        f"AND l.action IS DISTINCT FROM 'register' AND ({match})"
    )
    base = f"WITH latest AS ({muster.latest_events(mode)}) "
    join = "FROM reservations r LEFT JOIN latest l USING (profile_id) "
    term = search.strip().lower()
    rows = cur.execute(
        base + f"SELECT {PERSON_SELECT}, count(*) OVER () {join} WHERE {where} "
        "ORDER BY r.last_name, r.first_name, r.profile_id LIMIT $2",
        [term, MISSING_SHOWN],
    ).fetchall()
    people = [Person(*row[:-1]) for row in rows]
    return people, rows[0][-1] if rows else 0


def _handhelds(cur: duckdb.DuckDBPyConnection) -> list[Handheld]:
    rows = cur.execute(
        "SELECT device_id, arg_max(uploaded_by, received_at), max(received_at), count(*) "
        "FROM registrations GROUP BY device_id ORDER BY max(received_at) DESC, device_id"
    ).fetchall()
    return [Handheld(device, user, aware_utc(at) or at, n) for device, user, at, n in rows]


def data_version(cur: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None]:
    """What changes whenever a registration is stored: their number and the latest receipt."""
    row = cur.execute("SELECT count(*), max(received_at) FROM registrations").fetchall()[0]
    return row[0], row[1]


class MusterCache:
    """The last musters read, by view (mode and search), while the data version holds.

    Every open dashboard polls every second; while nothing changed (between uploads, and
    for every dashboard after the first) a poll costs one small query, not three scans of
    the registrations, so dashboards left open do not take time from the sync endpoints.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: Hashable = None
        self._views: dict[Hashable, Muster] = {}

    def get(self, version: Hashable, view: Hashable, read: Callable[[], Muster]) -> Muster:
        """The muster of ``view`` at ``version``: kept, or ``read()`` and kept."""
        with self._lock:
            if version != self._version:
                self._version, self._views = version, {}
            kept = self._views.get(view)
        if kept is not None:
            return kept
        muster = read()
        with self._lock:
            if version == self._version and len(self._views) < CACHED_VIEWS:
                self._views[view] = muster
        return muster
