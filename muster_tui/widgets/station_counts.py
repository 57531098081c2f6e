"""A station's counts and its missing list, as the Register screen shows them.

``Of T assigned here: N registered here, E at other stations, M missing`` (and those
registered here from other stations apart, so the figures add up), whether the figures are live (every
device, from the server) or this device's own (offline), and the people assigned here who
are registered nowhere, by name with their cabin; those with special needs are marked
:data:`NEEDS_MARK` (the title says what the mark means). The missing list never takes focus (a
card reader's keys must land in the card field); PageUp / PageDown scroll it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.safe_text import safe
from sync_core.device.registrar import StationCounts
from sync_core.muster import Person

LIVE_NOTE = "Counts from all devices (live)"
OFFLINE_NOTE = "Counts from this device only (offline)"
NEEDS_MARK = "!"  # ASCII: a serial terminal shows it too


def counts_text(station: StationCounts) -> str:
    """``Of T assigned here: N registered here, E at other stations, M missing``, then
    `` · Also registered here: V from other stations`` when there are any (rules in
    :mod:`sync_core.muster`)."""
    counts = station.counts
    text = (
        f"Of {counts.assigned} assigned here: {counts.own_registered} registered here, "
        f"{counts.at_other_stations} at other stations, {counts.not_registered} missing"
    )
    if counts.from_other_stations:
        text += f" · Also registered here: {counts.from_other_stations} from other stations"
    return text


class LiveNote(Label):
    """Whether the counts are live; carries ``-offline`` when they are this device's own."""

    def show(self, live: bool) -> None:
        """Say where the counts come from."""
        show_in_place(self, LIVE_NOTE if live else OFFLINE_NOTE)
        self.set_class(not live, "-offline")


def missing_line(person: Person) -> str:
    """``Last, First  cabin``, after :data:`NEEDS_MARK` when the person has special needs."""
    line = f"{person.name}  {person.cabin or '-'}"
    return f"{NEEDS_MARK} {line}" if person.special_needs else line


class MissingList(OptionList):
    """The missing people, one :func:`missing_line` each; never focused."""

    can_focus = False


class MissingPanel(Vertical):
    """``Missing (M)`` over the scrollable :class:`MissingList`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._listed: list[tuple[str, str]] = []  # (profile_id, line) of each option shown

    def compose(self) -> ComposeResult:
        """The title and the list."""
        yield Label("Missing", id="missing-title", classes="section-title")
        yield MissingList(id="missing", compact=True)

    def show(self, station: StationCounts) -> None:
        """List the missing of ``station`` (as many as were fetched, by name). The list is
        rebuilt only when it changed (200 options took ~12 ms here)."""
        missing = station.counts.missing
        legend = f" {NEEDS_MARK} special needs" if any(person.special_needs for person in missing) else ""
        show_in_place(
            self.query_one("#missing-title", Label), f"Missing ({station.counts.not_registered}){legend}"
        )
        listed = [(person.profile_id, missing_line(person)) for person in missing]
        if listed != self._listed:
            self._listed = listed
            self.query_one(MissingList).set_options(
                Option(safe(line), id=profile_id) for profile_id, line in listed
            )

    def scroll_missing(self, pages: int) -> None:
        """Scroll the list ``pages`` pages down (negative: up)."""
        missing = self.query_one(MissingList)
        page = missing.scrollable_content_region.height
        missing.scroll_to(y=missing.scroll_y + pages * page, animate=False)
