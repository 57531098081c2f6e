"""The profiles of the device store held in memory, so that a card scan or a search keystroke
is answered without a query (a scan within 20 ms and a keystroke within 10 ms, where
one DuckDB statement costs 1-3 ms and a name search over 10,000 profiles ~7.5 ms).

``store.view(People)`` (:meth:`~sync_core.device.store.DeviceStore.view`) gives the
store's one :class:`People`; after every write of the synced data (a delta page, a full
sync's swap, a retention wipe) the next call gives a new, unloaded one.
:meth:`People.load` reads the reservations once (~150 ms and ~15 MB for 10,000 profiles
here); it blocks, so callers on the event loop run it in a worker thread.

The answers are those of :func:`sync_core.muster.find_card` and :func:`sync_core.muster.search`
on the same data: DuckDB itself lowercases the number fields, folds the names
(:data:`~sync_core.muster.NAME_KEY_SQL`) and orders the profiles, so the rank of a profile is
its place in the SQL search's order and a key is the text the SQL search compares. The keys
of the four number fields share one list sorted by code point, the name words another; in
each, the keys starting with a text form one contiguous run (one bisection). A search of
several words intersects the runs of its words.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import date

from sync_core.device.store import DeviceStore
from sync_core.muster import (
    NAME_KEY_SQL,
    NUMBER_FIELDS,
    PERSON_COLUMNS,
    PERSON_SELECT,
    SEARCH_LIMIT,
    Person,
    search_words,
)

_FIELD_AT = [PERSON_COLUMNS.index(name) for name in NUMBER_FIELDS]
_CARD_AT = PERSON_COLUMNS.index("board_card_number")
_LOWERED = ", ".join(f'lower(r."{name}")' for name in NUMBER_FIELDS)
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
        self._numbers = _Index()  # lowercased number fields of every profile
        self._names = _Index()  # folded name words of every profile

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
                f"SELECT {PERSON_SELECT}, {NAME_KEY_SQL}, {_LOWERED} FROM reservations r "
                "ORDER BY r.last_name, r.first_name, r.profile_id"
            ).fetchall()
        numbers: list[tuple[str, int]] = []
        names: list[tuple[str, int]] = []
        for rank, row in enumerate(rows):
            for at, key in zip(_FIELD_AT, row[width + 1 :], strict=True):
                if key is not None:
                    value = row[at]
                    numbers.append((value if key == value else key, rank))  # digits: one string, not two
            names += ((word, rank) for word in set(row[width].split(" ")) if word)
            card = row[_CARD_AT]
            if card is not None:
                self._cards.setdefault(card, rank)
        self._numbers, self._names = _Index(numbers), _Index(names)
        self._rows = [row[:width] for row in rows]

    def find_card(self, card: str) -> Person | None:
        """The profile whose board card number is ``card``, or None; a number two profiles
        hold (bad data) gives the first by name."""
        rank = self.load()._cards.get(card)
        return None if rank is None else Person(*self._rows[rank])  # type: ignore[arg-type]

    def search(self, text: str, limit: int = SEARCH_LIMIT) -> list[Person]:
        """Profiles ``text`` finds (the search rule of :mod:`sync_core.muster`); at most
        ``limit``, by last name, first name and profile id."""
        term, words = text.strip().lower(), search_words(text)
        if not term or not words:
            return []
        self.load()
        found = self._names.starting(words[0])
        for word in words[1:]:
            found &= self._names.starting(word)
        found |= self._numbers.starting(term)
        return [Person(*self._rows[rank]) for rank in sorted(found)[:limit]]  # type: ignore[arg-type]


class _Index:
    """Keys of profiles sorted by code point, each with the rank of its profile."""

    def __init__(self, keyed: list[tuple[str, int]] | None = None) -> None:
        keyed = sorted(keyed or [])
        self.keys = [key for key, _ in keyed]
        self.ranks = [rank for _, rank in keyed]

    def starting(self, text: str) -> set[int]:
        """The ranks of the profiles with a key that starts with ``text`` (not empty)."""
        keys = self.keys
        start = bisect_left(keys, text)
        if text[-1] != _LAST_CHAR:  # the run ends before the first key >= the next text
            end = bisect_left(keys, text[:-1] + chr(ord(text[-1]) + 1), start)
        else:
            end = start
            while end < len(keys) and keys[end].startswith(text):
                end += 1
        return set(self.ranks[start:end])
