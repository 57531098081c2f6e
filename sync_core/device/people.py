"""The profiles of the device store held in memory, so that a card scan or a search keystroke
is answered without a query (a scan within 20 ms and a keystroke within 10 ms, where
one DuckDB statement costs 1-3 ms and a name search over 10,000 profiles ~7.5 ms).

``store.view(People)`` (:meth:`~sync_core.device.store.DeviceStore.view`) gives the
store's one :class:`People`; after every write of the synced data (a delta page, a full
sync's swap, a retention wipe) the next call gives a new, unloaded one.
:meth:`People.load` reads the reservations once (~150 ms and ~15 MB for 10,000 profiles
here); it blocks, so callers on the event loop run it in a worker thread.

The answers are those of :func:`sync_core.muster.find_card` and :func:`sync_core.muster.search`
on the same data: DuckDB itself lowercases the search fields and orders the profiles, so the
rank of a profile is its place in the SQL search's order and a field's key is the text the
SQL search compares. Keys of all six search fields share one list sorted by code point, in
which the keys starting with a text form one contiguous run.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import date

from sync_core.device.store import DeviceStore
from sync_core.muster import PERSON_COLUMNS, PERSON_SELECT, SEARCH_FIELDS, SEARCH_LIMIT, Person

_FIELD_AT = [PERSON_COLUMNS.index(name) for name in SEARCH_FIELDS]
_CARD_AT = PERSON_COLUMNS.index("board_card_number")
_LOWERED = ", ".join(f'lower(r."{name}")' for name in SEARCH_FIELDS)
_LAST_CHAR = chr(0x10FFFF)

Row = tuple[str | date | None, ...]
"""A profile's :data:`~sync_core.muster.PERSON_COLUMNS`, as a :class:`Person` takes them."""


class People:
    """The reservations of ``store`` as one read saw them, once loaded.

    Looking up before :meth:`load` loads first (blocking).
    """

    def __init__(self, store: DeviceStore) -> None:
        self._db = store.db
        self._lock = threading.Lock()
        self._loaded = False
        self._rows: list[Row] = []  # in the SQL search's order: the index is the rank
        self._cards: dict[str, int] = {}  # board card number -> rank
        self._keys: list[str] = []  # lowercased search fields of every profile, sorted
        self._ranks: list[int] = []  # the rank of the profile each key belongs to

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has read the reservations."""
        return self._loaded

    def load(self) -> People:
        """Read the reservations, unless done already; returns self. Blocks (~150 ms for
        10,000 profiles); a second caller meanwhile waits for the same read. Raises
        ``duckdb.Error`` when the store cannot be read."""
        with self._lock:
            if not self._loaded:
                self._read()
                self._loaded = True
        return self

    def _read(self) -> None:
        width = len(PERSON_COLUMNS)
        with self._db.cursor() as cur:
            rows = cur.execute(
                f"SELECT {PERSON_SELECT}, {_LOWERED} FROM reservations r "
                "ORDER BY r.last_name, r.first_name, r.profile_id"
            ).fetchall()
        keys: list[str] = []
        ranks: list[int] = []
        for rank, row in enumerate(rows):
            for at, key in zip(_FIELD_AT, row[width:], strict=True):
                if key is not None:
                    value = row[at]
                    keys.append(value if key == value else key)  # digits: one string, not two
                    ranks.append(rank)
            card = row[_CARD_AT]
            if card is not None:
                self._cards.setdefault(card, rank)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[at] for at in order]
        self._ranks = [ranks[at] for at in order]
        self._rows = [row[:width] for row in rows]

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
