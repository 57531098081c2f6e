"""Search by name (or cabin, manning, booking or card number) as you type, keyboard only.

Each change of the text runs the search in an exclusive worker, so only the latest query's
results are shown. Down / Up move through the results while the text keeps focus; Enter
picks the highlighted person and posts :class:`PersonSearch.Picked`. The results list
never takes focus itself (a card reader's keys must land in a field).
"""

from __future__ import annotations

import logging
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


class SearchResults(OptionList):
    """The people found: ``Last, First  cabin  station``; never focused."""

    can_focus = False


class PersonSearch(Vertical):
    """The search field and its results; ``search`` does the finding.

    Carries ``-open`` while there are results (or a "nobody found") to show.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    class Picked(Message):
        """The crew member picked ``person`` from the results."""

        def __init__(self, person: Person) -> None:
            super().__init__()
            self.person = person

    def __init__(self, search: Search, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.search = search
        self.found: list[Person] = []

    def compose(self) -> ComposeResult:
        """The field, the results and the "nobody found" note."""
        yield PlainInput(placeholder="name, cabin or card", id="search")
        yield SearchResults(id="results", compact=True)
        yield Label(id="search-note")

    @property
    def field(self) -> Input:
        """The search text field."""
        return self.query_one("#search", Input)

    def reset(self) -> None:
        """Empty the field and close the results."""
        self.workers.cancel_group(self, "search")
        with self.field.prevent(Input.Changed):
            self.field.value = ""
        self._show([], "")

    @on(Input.Changed, "#search")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._find(event.value)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _find(self, text: str) -> None:
        if not text.strip():
            self._show([], "")
            return
        try:
            found = await self.search(text, SEARCH_LIMIT)
        except SyncError as exc:
            log.warning("search for %r failed: %s", text, exc)
            self._show([], str(exc))
            return
        self._show(found, "" if found else NOTHING_FOUND)

    def _show(self, found: list[Person], note: str) -> None:
        self.found = found
        results = self.query_one(SearchResults)
        results.set_options(
            Option(safe(f"{person.name}  {person.cabin or '-'}  {person.muster_station or '-'}")) for person in found
        )
        results.highlighted = 0 if found else None
        self.query_one("#search-note", Label).update(safe(note))
        self.set_class(bool(found or note), "-open")

    def action_move(self, step: int) -> None:
        """Highlight the next (or previous) result."""
        results = self.query_one(SearchResults)
        if self.found:
            results.highlighted = ((results.highlighted or 0) + step) % len(self.found)

    @on(Input.Submitted, "#search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        highlighted = self.query_one(SearchResults).highlighted
        if self.found and highlighted is not None:
            self.post_message(self.Picked(self.found[highlighted]))
