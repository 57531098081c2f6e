"""Search by name (or cabin, manning, booking or card number) as you type, keyboard only.

Names match by words in any order, ignoring case and accents (:func:`sync_core.muster.search`);
each result shows the name, cabin, card number and muster station (:func:`result_line`).

Each change of the text is answered at once when the search can (``at_once``: the people
are in memory), else the search runs in an exclusive worker, so only the latest query's
results are shown. Down / Up move through the results while the text keeps focus; Enter
picks the highlighted person and posts :class:`PersonSearch.Picked`. An Enter typed before
the results of the text on screen have arrived picks from those results once they do, never
from an older query's. The results list never takes focus itself (a card reader's keys must
land in a field).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from muster_tui.widgets.plain_input import PlainInput
from muster_tui.widgets.safe_text import safe
from sync_core.errors import SyncError
from sync_core.muster import SEARCH_LIMIT, Person

log = logging.getLogger(__name__)
NOTHING_FOUND = "Nobody found"

Search = Callable[[str, int], Awaitable[list[Person]]]
"""Finds people by a text, at most a number of them (``Book.search``)."""

SearchNow = Callable[[str, int], list[Person] | None]
"""The same answer when it needs no wait, else None (``Registrar.search_now``)."""


def result_line(person: Person) -> str:
    """``Last, First  cabin  card 2019567205  station A`` (``-`` for what is missing)."""
    return (
        f"{person.name}  {person.cabin or '-'}  card {person.board_card_number or '-'}  "
        f"station {person.muster_station or '-'}"
    )


class SearchResults(OptionList):
    """The people found, one :func:`result_line` each; never focused."""

    can_focus = False


class PersonSearch(Vertical):
    """The search field, its results and a note ("Nobody found", or why the search
    failed), each shown only when it has something to say; ``search`` does the finding,
    ``at_once`` (if given) first, when it can answer without a wait."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("escape", "close", "Close", show=False),
    ]

    class Picked(Message):
        """The crew member picked ``person`` from the results."""

        def __init__(self, person: Person) -> None:
            super().__init__()
            self.person = person

    class Closed(Message):
        """The crew member left the search (Esc)."""

    def __init__(self, search: Search, *, at_once: SearchNow | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.search = search
        self.at_once = at_once
        self.found: list[Person] = []
        self.found_for = ""  # the text ``found`` answers
        self._pick_pending = False
        self._typed_at = 0.0
        self.keystroke_latencies: list[float] = []  # seconds from a keystroke to its results shown

    def compose(self) -> ComposeResult:
        """The field, the results and the "nobody found" note."""
        yield PlainInput(placeholder="name, cabin or card", id="search")
        yield SearchResults(id="results", compact=True)
        yield Label(id="search-note")

    def on_mount(self) -> None:
        """Nothing found yet: results and note hidden."""
        self._show([], "", "")

    @property
    def field(self) -> Input:
        """The search text field."""
        return self.query_one("#search", Input)

    def reset(self) -> None:
        """Empty the field and close the results."""
        self.workers.cancel_group(self, "search")
        self._pick_pending = False
        with self.field.prevent(Input.Changed):
            self.field.value = ""
        self._show([], "", "")

    def action_close(self) -> None:
        """Empty the field and say the search was left."""
        self.reset()
        self.post_message(self.Closed())

    @on(Input.Changed, "#search")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._pick_pending = False
        self._typed_at = event.time
        text = event.value
        found = self.at_once(text, SEARCH_LIMIT) if self.at_once and text.strip() else None
        if found is None:
            self._find(text)
        else:
            self.workers.cancel_group(self, "search")  # an older query must not answer after this
            self._found(found, text)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _find(self, text: str) -> None:
        if not text.strip():
            self._show([], "", text)
            return
        try:
            found = await self.search(text, SEARCH_LIMIT)
        except SyncError as exc:
            log.warning("search (%d characters) failed: %s", len(text), exc)  # the text may be a name
            self._show([], str(exc), text)
            return
        self._found(found, text)

    def _found(self, found: list[Person], text: str) -> None:
        """Show what was found for ``text``, and pick from it if Enter came first."""
        self._show(found, "" if found else NOTHING_FOUND, text)
        self.keystroke_latencies.append(time.monotonic() - self._typed_at)
        if self._pick_pending:
            self._pick_pending = False
            self._pick()

    def _show(self, found: list[Person], note: str, found_for: str) -> None:
        self.found = found
        self.found_for = found_for
        results = self.query_one(SearchResults)
        results.set_options(Option(safe(result_line(person))) for person in found)
        results.highlighted = 0 if found else None
        shown = self.query_one("#search-note", Label)
        shown.update(safe(note))
        shown.display = bool(note)
        results.display = bool(found)

    def action_move(self, step: int) -> None:
        """Highlight the next (or previous) result."""
        results = self.query_one(SearchResults)
        if self.found:
            results.highlighted = ((results.highlighted or 0) + step) % len(self.found)

    @on(Input.Submitted, "#search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.found_for == event.value:
            self._pick()
        else:
            self._pick_pending = True

    def _pick(self) -> None:
        highlighted = self.query_one(SearchResults).highlighted
        if self.found and highlighted is not None:
            self.post_message(self.Picked(self.found[highlighted]))
