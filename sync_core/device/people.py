"""The profiles of the device store held in memory, so that a card scan or a search keystroke
is answered without a query (a scan within 20 ms and a keystroke within 10 ms, where
one DuckDB statement costs 1-3 ms and a name search over 10,000 profiles ~7.5 ms).

``store.view(People)`` (:meth:`~sync_core.device.store.DeviceStore.view`) gives the
store's one :class:`People`; after every write of the synced data (a delta page, a full
sync's swap, a retention wipe) the next call gives a new, unloaded one.
:meth:`People.load` reads the reservations once (~150 ms and ~15 MB for 10,000 profiles
here, more with the opening); it opens each profile's sealed personal fields with the data key
(docs/security.md; the store answers StoreLocked before a sign-in) and blocks, so callers on
the event loop run it in a worker thread. This is the only place the device reads names and
card numbers: they are not queried from the file.

The answers are those :func:`sync_core.muster.find_card` and :func:`sync_core.muster.search`
give on the same data in clear: profiles ordered by last name, first name and profile id (code
point order, missing values last), number fields lowercased, names folded as
:data:`~sync_core.muster.NAME_KEY_SQL` folds them, so the rank of a profile is its place in the
SQL search's order and a key is the text the SQL search compares. The keys
of the four number fields share one list sorted by code point, the name words another; in
each, the keys starting with a text form one contiguous run (one bisection). A search of
several words intersects the runs of its words.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import date
from operator import itemgetter
from typing import Any

from sync_core.device import collector
from sync_core.device.sealing import SEALED_FIELDS, Sealer
from sync_core.device.store import DeviceStore
from sync_core.muster import NUMBER_FIELDS, PERSON_COLUMNS, SEARCH_LIMIT, Person, fold, search_words

_FIELD_AT = [PERSON_COLUMNS.index(name) for name in NUMBER_FIELDS]
_CARD_AT = PERSON_COLUMNS.index("board_card_number")
_FIRST_AT, _LAST_AT = PERSON_COLUMNS.index("first_name"), PERSON_COLUMNS.index("last_name")
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
        self._numbers = _Index()  # lowercased number fields of every profile
        self._names = _Index()  # folded name words of every profile
        self._ids: dict[str, int] = {}  # profile id -> rank

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has read the reservations."""
        return self._loaded

    def load(self) -> People:
        """Read the reservations, unless done already, then settle the garbage collector
        (:func:`~sync_core.device.collector.settle`: the index is the device's largest
        long-lived heap, and scans must not pay for walking it); returns self. Blocks
        (~200 ms for 10,000 profiles); a second caller meanwhile waits for the same read.
        Raises ``duckdb.Error`` when the store cannot be read, StoreLocked before a sign-in."""
        with self._lock:
            if not self._loaded:
                self._read()
                self._loaded = True
                collector.settle()
        return self

    def _read(self) -> None:
        sealer = self._store.sealer
        with self._store.db.cursor() as cur:
            rows = cur.execute(f"SELECT {_CLEAR_SELECT}, sealed FROM reservations").fetchall()
        people = sorted((_opened(sealer, row) for row in rows), key=_by_name)
        numbers: list[tuple[str, int]] = []
        names: list[tuple[str, int]] = []
        for rank, person in enumerate(people):
            numbers += ((str(person[at]).lower(), rank) for at in _FIELD_AT if person[at] is not None)
            words = " ".join(str(person[at]) for at in (_FIRST_AT, _LAST_AT) if person[at] is not None)
            names += ((word, rank) for word in set(fold(words).replace("-", " ").split(" ")) if word)
            card = person[_CARD_AT]
            if card is not None:
                self._cards.setdefault(str(card), rank)
        self._numbers, self._names = _Index(numbers), _Index(names)
        self._rows = people
        self._ids = {str(person[0]): rank for rank, person in enumerate(people)}

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
