"""The muster rules and the queries behind them, shared by the device and the server.

Both stores hold the six datasets with the same columns and a ``registrations`` table with
:data:`REGISTRATION_DDL`'s columns, so the same SQL answers a card scan, a name search or a
station's counts on the device (offline: this device's registrations) and on the server
(online: every device's). Functions take a DuckDB cursor and run read-only statements.

Rules (with the general parameters that tune them):

- A person's **standing** in a safety mode is their latest registration event in that
  mode (by ``registered_utc``, then the time-ordered UUIDv7 id): registered at a place,
  or not registered.
- A station (muster station, or lifeboat in abandon ship) is **assigned** the profiles
  that name it and are on board (``movement_status = 'Onboard'``): people ashore or not yet
  embarked are not missing.
- **Counts**: registered = standing registered here (from any station); not registered =
  assigned here and registered nowhere in this mode; those are also the **missing**. So
  that the figures add up, those registered here from other stations (or not assigned
  anywhere on board here) and those assigned here but registered at another station are
  counted apart: assigned = registered here and assigned here + at other stations +
  not registered, and registered = registered here and assigned here + from other stations.
- **Search**: a text finds the profiles whose cabin, manning, booking or board card number
  starts with it (any case), and those each of whose words starts a word of their first or
  last name, in any order, ignoring case and accents ("zoe" finds "Zoë", "williams sam"
  finds "Samantha Williams"); names split at spaces and hyphens (:data:`NAME_KEY_SQL`).
- **Wrong station** (``assembly_handling_mode``): 1 register anyone here, 2 ask the crew
  member, 3 refuse.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum, StrEnum

import duckdb

from sync_core.duck import first_row
from sync_core.errors import BadCard
from sync_core.protocol import SafetyMode

log = logging.getLogger(__name__)
# Sign-in lockout, on the device and on the server (docs/security.md, "Server sign-in"):
# this many failed sign-ins in a row lock a username for that many minutes. The defaults
# (the fixture ship's values) apply when a parameter is missing or not a whole number >= 1.
MAX_FAILED_SIGN_INS = "max_failed_sign_ins"
LOCKOUT_MINUTES = "lockout_minutes"
DEFAULT_MAX_FAILED_SIGN_INS = 5
DEFAULT_LOCKOUT_MINUTES = 15
# The largest whole-number parameter taken (minutes or days: at most ~69 days or ~274 years).
WHOLE_PARAMETER_MAX = 100_000

# device time with its offset as captured (text, shown back as HH:MM), and the same instant
# in UTC for ordering.
REGISTRATION_DDL = (
    "CREATE TABLE IF NOT EXISTS registrations ("
    "registration_id VARCHAR PRIMARY KEY, profile_id VARCHAR NOT NULL, action VARCHAR NOT NULL, "
    "safety_mode VARCHAR NOT NULL, muster_station VARCHAR, lifeboat VARCHAR, "
    "registered_at VARCHAR NOT NULL, registered_utc TIMESTAMP NOT NULL, username VARCHAR NOT NULL, "
    "device_id VARCHAR NOT NULL{extra})"
)
REGISTRATION_COLUMNS = (
    "registration_id", "profile_id", "action", "safety_mode", "muster_station", "lifeboat",
    "registered_at", "registered_utc", "username", "device_id",
)  # fmt: skip

CARD_PATTERN = re.compile(r"[0-9A-Za-z]{4,32}")
SEARCH_LIMIT = 20
MISSING_LIMIT = 200
PERSON_COLUMNS = (
    "profile_id", "first_name", "last_name", "profile_type", "pax_class", "birth_date", "cabin",
    "board_card_number", "manning_number", "booking_number", "muster_station", "lifeboat",
    "special_needs", "picture_sha256", "movement_status",
)  # fmt: skip
PERSON_SELECT = ", ".join(f'r."{name}"' for name in PERSON_COLUMNS)
# The columns a whole search text may start (cabin, manning, booking, card numbers).
NUMBER_FIELDS = ("cabin", "manning_number", "booking_number", "board_card_number")
# Where a search text splits into words.
WORD_BREAK = r"[\s-]+"
# A profile's name words, lowercased and without accents by DuckDB, each after a space
# (" samantha williams"; names split at spaces and hyphens): a search word starts a name
# word when " " + word is in it. replace() costs a third of a regular expression here.
NAME_KEY_SQL = "' ' || replace(strip_accents(lower(concat_ws(' ', r.first_name, r.last_name))), '-', ' ')"


class AssemblyHandling(IntEnum):
    """General parameter ``assembly_handling_mode``: what to do with a person from another station."""

    REGISTER_ANYONE = 1
    ASK = 2
    REFUSE = 3


class Verdict(StrEnum):
    """What the rules say about registering a person at a place."""

    REGISTER = "register"
    ASK = "ask"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Person:
    """A profile as the person card shows it (reservations columns)."""

    profile_id: str
    first_name: str | None
    last_name: str | None
    profile_type: str | None
    pax_class: str | None
    birth_date: date | None
    cabin: str | None
    board_card_number: str | None
    manning_number: str | None
    booking_number: str | None
    muster_station: str | None
    lifeboat: str | None
    special_needs: str | None
    picture_sha256: str | None
    movement_status: str | None

    @property
    def name(self) -> str:
        """``Last, First`` as crew read it off a list."""
        return ", ".join(part for part in (self.last_name, self.first_name) if part) or self.profile_id

    def assigned_place(self, mode: SafetyMode) -> str | None:
        """The person's own muster station, or lifeboat in abandon ship."""
        return self.lifeboat if mode.by_lifeboat else self.muster_station


@dataclass(frozen=True)
class Place:
    """A muster station or a lifeboat: its code and what crew call it."""

    code: str
    name: str


@dataclass(frozen=True)
class Standing:
    """A person's latest registration in one safety mode, while it says registered.

    ``registered_at`` is the device time with its offset, as ISO 8601 text.
    """

    place: str
    registered_at: str
    username: str
    registration_id: str

    @property
    def time_of_day(self) -> str:
        """``HH:MM`` of ``registered_at`` in the capturing device's own offset, with that
        offset: ``23:16 UTC``, ``00:16 UTC+01:00``."""
        moment = datetime.fromisoformat(self.registered_at)
        offset = moment.isoformat(timespec="minutes")[-6:] if moment.utcoffset() else ""
        return f"{moment:%H:%M} UTC{offset}"


@dataclass(frozen=True)
class Counts:
    """A station's counts in one safety mode (see the module's rules): ``registered`` here
    in all, of whom ``from_other_stations`` are not assigned here; ``assigned`` here, of
    whom ``at_other_stations`` are registered at another station and ``not_registered``
    nowhere (the ``missing``, the first of them by name)."""

    registered: int
    not_registered: int
    assigned: int
    missing: list[Person]
    from_other_stations: int
    at_other_stations: int

    @property
    def own_registered(self) -> int:
        """Assigned here and registered here."""
        return self.registered - self.from_other_stations


def card_number(text: str) -> str:
    """The card number in ``text`` as a reader typed it (whitespace around it dropped).

    Raises BadCard unless it is 4 to 32 letters or digits.
    """
    card = text.strip()
    if not CARD_PATTERN.fullmatch(card):
        shown = card.encode("unicode_escape").decode()[:40]
        raise BadCard(f"'{shown}' is not a card number (4 to 32 letters or digits)")
    return card


def verdict(person: Person, mode: SafetyMode, place: str, handling: AssemblyHandling) -> Verdict:
    """May ``person`` be registered at ``place`` in ``mode`` under ``handling``?"""
    if person.assigned_place(mode) == place or handling is AssemblyHandling.REGISTER_ANYONE:
        return Verdict.REGISTER
    return Verdict.ASK if handling is AssemblyHandling.ASK else Verdict.REFUSE


def station_order(code: str) -> tuple[int, str, int, str]:
    """Sort key of a muster station code (letters, then perhaps a number): the shorter
    letters first, then by letters and number (``A`` ... ``N``, then ``ES1``, ``ES2`` ...
    ``ES10``)."""
    letters = code.rstrip("0123456789")
    number = code[len(letters) :]
    return len(letters), letters, int(number) if number else -1, code


def places(cur: duckdb.DuckDBPyConnection, mode: SafetyMode) -> list[Place]:
    """The lifeboats (abandon ship) in launch sequence, or the muster stations in
    :func:`station_order`."""
    if mode.by_lifeboat:
        sql = "SELECT code, coalesce(description, code) FROM lifeboats ORDER BY launch_sequence, code"
        return [Place(code, name) for code, name in cur.execute(sql).fetchall()]
    stations = cur.execute("SELECT code, coalesce(name, code) FROM muster_stations").fetchall()
    return sorted((Place(code, name) for code, name in stations), key=lambda place: station_order(place.code))


def find_card(cur: duckdb.DuckDBPyConnection, card: str) -> Person | None:
    """The profile whose board card number is ``card`` (see :func:`card_number`), or None."""
    row = first_row(cur, f"SELECT {PERSON_SELECT} FROM reservations r WHERE board_card_number = ?", [card])
    return Person(*row) if row else None


def find_profile(cur: duckdb.DuckDBPyConnection, profile_id: str) -> Person | None:
    """The profile ``profile_id``, or None."""
    row = first_row(cur, f"SELECT {PERSON_SELECT} FROM reservations r WHERE profile_id = ?", [profile_id])
    return Person(*row) if row else None


def fold(text: str) -> str:
    """``text`` lowercased and without accents, as DuckDB's ``strip_accents(lower(...))``."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def search_words(text: str) -> list[str]:
    """The words of a search ``text``, folded (:func:`fold`, as :data:`NAME_KEY_SQL` folds the
    names): ``"Zoë  Smith-J"`` -> ``["zoe", "smith", "j"]``."""
    return [word for word in re.split(WORD_BREAK, fold(text)) if word]


def search(cur: duckdb.DuckDBPyConnection, text: str, limit: int = SEARCH_LIMIT) -> list[Person]:
    """Profiles ``text`` finds (the module's search rule); at most ``limit``, by last name,
    first name and profile id."""
    term, words = text.strip().lower(), search_words(text)
    if not term or not words:
        return []
    numbers = " OR ".join(f'starts_with(lower(r."{name}"), ?)' for name in NUMBER_FIELDS)
    names = " AND ".join(f"contains({NAME_KEY_SQL}, ?)" for _ in words)
    rows = cur.execute(
        f"SELECT {PERSON_SELECT} FROM reservations r WHERE {numbers} OR ({names}) "
        "ORDER BY last_name, first_name, profile_id LIMIT ?",
        [*[term] * len(NUMBER_FIELDS), *(f" {word}" for word in words), limit],
    ).fetchall()
    return [Person(*row) for row in rows]


EVENT_COLUMNS = ("profile_id", "action", "place", "registered_at", "username", "registration_id")


def latest_events(mode: SafetyMode, *extra: str) -> str:
    """SQL of each person's latest event in ``mode``: profile_id, action, place, time, user,
    id, then the registrations' columns ``extra``.

    A window's first row per person, which runs the same on the server's PostgreSQL (unlike
    DuckDB's arg_max). Not DISTINCT ON: on DuckDB that grouped in a hash table needing more
    than 48 MB for 47,000 registrations (a drill of a 50,000-profile ship), over the server's
    memory limit, where the window needs under 16 MB."""
    place = "lifeboat" if mode.by_lifeboat else "muster_station"
    columns = ", ".join((*EVENT_COLUMNS, *extra))
    return (
        f"SELECT {columns} FROM (SELECT *, {place} AS place, row_number() OVER (PARTITION BY profile_id "
        "ORDER BY registered_utc DESC, registration_id DESC) AS nth "
        f"FROM registrations WHERE safety_mode = '{mode.value}') AS events WHERE nth = 1"
    )


def standing(cur: duckdb.DuckDBPyConnection, profile_id: str, mode: SafetyMode) -> Standing | None:
    """Where ``profile_id`` stands registered in ``mode``, or None when not registered."""
    place = "lifeboat" if mode.by_lifeboat else "muster_station"
    row = first_row(
        cur,
        f"SELECT action, {place}, registered_at, username, registration_id FROM registrations "
        "WHERE profile_id = ? AND safety_mode = ? ORDER BY registered_utc DESC, registration_id DESC LIMIT 1",
        [profile_id, mode.value],
    )
    if row is None or row[0] != "register":
        return None
    return Standing(place=row[1], registered_at=row[2], username=row[3], registration_id=row[4])


def counts(
    cur: duckdb.DuckDBPyConnection, mode: SafetyMode, place: str, missing_limit: int = MISSING_LIMIT
) -> Counts:
    """Registered / not registered / assigned at ``place`` in ``mode`` and the first
    ``missing_limit`` missing people by name."""
    missing = cur.execute(
        f"WITH latest AS ({latest_events(mode)}) SELECT {PERSON_SELECT} FROM reservations r "
        f"LEFT JOIN latest l USING (profile_id) WHERE {_missing_here(mode)} "
        "ORDER BY r.last_name, r.first_name, r.profile_id LIMIT $2",
        [place, missing_limit],
    ).fetchall()
    return count_figures(cur, mode, place, [Person(*row) for row in missing])


def count_figures(
    cur: duckdb.DuckDBPyConnection, mode: SafetyMode, place: str, missing: list[Person]
) -> Counts:
    """The :class:`Counts` at ``place`` in ``mode`` with ``missing`` as its missing people."""
    assigned_here = _assigned_here(mode)
    row = first_row(
        cur,
        f"WITH latest AS ({latest_events(mode)}) SELECT "
        "(SELECT count(*) FROM latest WHERE action = 'register' AND place = $1), "
        f"(SELECT count(*) FROM reservations r WHERE {assigned_here}), "
        f"(SELECT count(*) FROM reservations r JOIN latest l USING (profile_id) "
        f" WHERE {assigned_here} AND l.action = 'register'), "
        f"(SELECT count(*) FROM reservations r JOIN latest l USING (profile_id) "
        f" WHERE {assigned_here} AND l.action = 'register' AND l.place = $1)",
        [place],
    )
    assert row is not None
    registered, assigned, assigned_registered, own = row
    return Counts(
        registered=registered,
        not_registered=assigned - assigned_registered,
        assigned=assigned,
        missing=missing,
        from_other_stations=registered - own,
        at_other_stations=assigned_registered - own,
    )


def missing_ids(cur: duckdb.DuckDBPyConnection, mode: SafetyMode, place: str) -> list[str]:
    """The profile ids of everyone missing at ``place`` in ``mode``, in no order (the device
    orders them by name in memory, where its names are open)."""
    rows = cur.execute(
        f"WITH latest AS ({latest_events(mode)}) SELECT r.profile_id FROM reservations r "
        f"LEFT JOIN latest l USING (profile_id) WHERE {_missing_here(mode)}",
        [place],
    ).fetchall()
    return [row[0] for row in rows]


def _assigned_here(mode: SafetyMode) -> str:
    """SQL: profile ``r`` is on board and assigned to the place ``$1``."""
    column = "lifeboat" if mode.by_lifeboat else "muster_station"
    return f"r.\"{column}\" = $1 AND r.movement_status = 'Onboard'"


def _missing_here(mode: SafetyMode) -> str:
    """SQL: profile ``r`` is assigned to ``$1`` and its latest event ``l`` is no registration."""
    return f"{_assigned_here(mode)} AND l.action IS DISTINCT FROM 'register'"


def parameter(cur: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """General parameter ``name``'s value, or None."""
    row = first_row(cur, "SELECT value FROM parameters WHERE name = ?", [name])
    return row[0] if row else None


def whole_parameter(cur: duckdb.DuckDBPyConnection, name: str, default: int) -> int:
    """General parameter ``name`` as a whole number (see :func:`whole_number`)."""
    return whole_number(name, parameter(cur, name), default)


def whole_number(name: str, value: str | None, default: int) -> int:
    """General parameter ``name``'s ``value`` as a whole number from 1 to
    ``WHOLE_PARAMETER_MAX``: ``default`` when it is missing or not a whole number >= 1, the
    maximum when it is larger (both logged). Every caller makes a time span of it: the cap
    keeps that and the times computed from it within datetime's range, whatever the office
    typed."""
    text = (value or "").strip()
    if text.isdecimal():
        # int() refuses numbers of thousands of digits; anything that long is above the cap
        number = int(text) if len(text.lstrip("0")) <= 9 else WHOLE_PARAMETER_MAX + 1
        if number > WHOLE_PARAMETER_MAX:
            log.warning(
                "general parameter %s=%r is above the cap; using %d", name, value, WHOLE_PARAMETER_MAX
            )
            return WHOLE_PARAMETER_MAX
        if number >= 1:
            return number
    if value is not None:
        log.warning("general parameter %s=%r is not a whole number >= 1; using %d", name, value, default)
    return default
