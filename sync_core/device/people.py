"""The profiles of the device store held in memory, so that a card scan or a search keystroke
is answered without a query (a scan within 20 ms and a keystroke within 10 ms, where
one DuckDB statement costs 1-3 ms and a name search over 10,000 profiles ~7.5 ms).

``store.view(People)`` (:meth:`~sync_core.device.store.DeviceStore.view`) gives the
store's one :class:`People`; after every write of the synced data (a delta page, a full
sync's swap, a retention wipe) the next call gives a new, unloaded one.
:meth:`People.load` reads the reservations once and opens each profile's sealed personal
fields with the data key (docs/security.md; the store answers StoreLocked before a sign-in);
it blocks, so callers on the event loop run it in a worker thread. This is the only place the
device reads names and card numbers: they are not queried from the file.

The answers are those :func:`sync_core.muster.find_card` and :func:`sync_core.muster.search`
give on the same data in clear: profiles ordered by last name, first name and profile id (code
point order, missing values last), so the rank of a profile is its place in the SQL search's
order and a field's key is the field lowercased. Keys of all six search fields share one list
sorted by code point, in which the keys starting with a text form one contiguous run.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import date
from operator import itemgetter
from typing import Any

from sync_core.device.sealing import SEALED_FIELDS, Sealer
from sync_core.device.store import DeviceStore
from sync_core.muster import PERSON_COLUMNS, SEARCH_FIELDS, SEARCH_LIMIT, Person

_FIELD_AT = [PERSON_COLUMNS.index(name) for name in SEARCH_FIELDS]
_CARD_AT = PERSON_COLUMNS.index("board_card_number")
_NAME_AT = (PERSON_COLUMNS.index("last_name"), PERSON_COLUMNS.index("first_name"), 0)
_CLEAR = [name for name in PERSON_COLUMNS if name not in SEALED_FIELDS["reservations"]]
_CLEAR_SELECT = ", ".join(f'"{name}"' for name in _CLEAR)
# A stored row's clear columns followed by its opened fields, picked into PERSON_COLUMNS order.
_OPENED_ORDER = _CLEAR + list(SEALED_FIELDS["reservations"])
_PICK = itemgetter(*(_OPENED_ORDER.index(name) for name in PERSON_COLUMNS))
_BIRTH_AT = PERSON_COLUMNS.index("birth_date")
_LAST_CHAR = chr(0x10FFFF)

Row = tuple[str | date | None, ...]
"""A profile's :data:`~sync_core.muster.PERSON_COLUMNS`, as a :class:`Person` takes them."""


def _opened(sealer: Sealer, row: tuple[Any, ...]) -> Row:
    """A stored reservation (the clear columns of :data:`_CLEAR`, then its sealed blob) as a
    :data:`Row`."""
    person = _PICK(row[:-1] + tuple(sealer.open_values(row[0], row[-1])))
    birth = person[_BIRTH_AT]
    if birth is None:
        return person
    return person[:_BIRTH_AT] + (date.fromisoformat(birth),) + person[_BIRTH_AT + 1 :]


def _by_name(row: Row) -> tuple[tuple[bool, str], ...]:
    """The order of the SQL search: last name, first name, profile id, code point order,
    missing values last."""
    return tuple((row[at] is None, str(row[at] or "")) for at in _NAME_AT)


class People:
    """The reservations of ``store`` as one read saw them, once loaded.

    Looking up before :meth:`load` loads first (blocking).
    """

    def __init__(self, store: DeviceStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._loaded = False
        self._rows: list[Row] = []  # in the SQL search's order: the index is the rank
        self._cards: dict[str, int] = {}  # board card number -> rank
        self._keys: list[str] = []  # lowercased search fields of every profile, sorted
        self._ranks: list[int] = []  # the rank of the profile each key belongs to
        self._ids: dict[str, int] = {}  # profile id -> rank

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has read the reservations."""
        return self._loaded

    def load(self) -> People:
        """Read the reservations, unless done already; returns self. Blocks (~150 ms for
        10,000 profiles); a second caller meanwhile waits for the same read. Raises
        ``duckdb.Error`` when the store cannot be read, StoreLocked before a sign-in."""
        with self._lock:
            if not self._loaded:
                self._read()
                self._loaded = True
        return self

    def _read(self) -> None:
        sealer = self._store.sealer
        with self._store.db.cursor() as cur:
            rows = cur.execute(f"SELECT {_CLEAR_SELECT}, sealed FROM reservations").fetchall()
        people = [_opened(sealer, row) for row in rows]
        people.sort(key=_by_name)
        keys: list[str] = []
        ranks: list[int] = []
        for rank, person in enumerate(people):
            for at in _FIELD_AT:
                value = person[at]
                if value is not None:
                    keys.append(value.lower())  # type: ignore[union-attr]
                    ranks.append(rank)
            card = person[_CARD_AT]
            if card is not None:
                self._cards.setdefault(card, rank)  # type: ignore[arg-type]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[at] for at in order]
        self._ranks = [ranks[at] for at in order]
        self._rows = people
        self._ids = {person[0]: rank for rank, person in enumerate(people)}  # type: ignore[misc]

    def everyone(self) -> list[Person]:
        """Every profile, by last name, first name and profile id."""
        return [Person(*row) for row in self.load()._rows]  # type: ignore[arg-type]

    def by_name(self, profile_ids: list[str], limit: int) -> list[Person]:
        """The first ``limit`` of the profiles ``profile_ids`` (unknown ones left out) by last
        name, first name and profile id."""
        ranks = sorted(rank for rank in map(self.load()._ids.get, profile_ids) if rank is not None)
        return [Person(*self._rows[rank]) for rank in ranks[:limit]]  # type: ignore[arg-type]

    def find_card(self, card: str) -> Person | None:
        """The profile whose board card number is ``card``, or None; a number two profiles
        hold (bad data) gives the first by name."""
        rank = self.load()._cards.get(card)
        return None if rank is None else Person(*self._rows[rank])  # type: ignore[arg-type]

    def search(self, text: str, limit: int = SEARCH_LIMIT) -> list[Person]:
        """Profiles whose first or last name, cabin, manning, booking or board card number
        starts with ``text`` (stripped, any case); at most ``limit``, by last name, first
        name and profile id. ~1 ms at most over 10,000 profiles (a one-letter text)."""
        term = text.strip().lower()
        if not term:
            return []
        keys = self.load()._keys
        start = bisect_left(keys, term)
        if term[-1] != _LAST_CHAR:  # the run ends before the first key >= the next text
            end = bisect_left(keys, term[:-1] + chr(ord(term[-1]) + 1), start)
        else:
            end = start
            while end < len(keys) and keys[end].startswith(term):
                end += 1
        ranks = sorted(set(self._ranks[start:end]))[:limit]
        return [Person(*self._rows[rank]) for rank in ranks]  # type: ignore[arg-type]
