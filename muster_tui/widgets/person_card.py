"""The person card of the Register screen: who was scanned or picked, and where they stand.

Portrait, name, profile type, pax class and age, cabin and card, the assigned muster
station and lifeboat, special needs, and the standing in the current safety mode
("Registered here at HH:MM", "Registered at B at HH:MM", "Not registered"). Every value
from the data is rendered with :func:`~muster_tui.widgets.safe_text.safe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from PIL import Image
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label

from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.portrait import Portrait
from muster_tui.widgets.safe_text import safe
from sync_core.muster import Person, Standing
from sync_core.protocol import SafetyMode

EMPTY_HINT = "Scan a card, or F6 to search by name"
NOT_REGISTERED = "Not registered"


def age(birth_date: date, today: date) -> int:
    """Whole years from ``birth_date`` to ``today``."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def standing_text(standing: Standing | None, here: str) -> str:
    """``Registered here at HH:MM``, ``Registered at B at HH:MM`` or ``Not registered``."""
    if standing is None:
        return NOT_REGISTERED
    where = "here" if standing.place == here else f"at {standing.place}"
    return f"Registered {where} at {standing.time_of_day}"


@dataclass(frozen=True)
class CardView:
    """What the card shows: ``person`` and their ``standing`` in ``mode`` at the place
    ``here``; ``flag_elsewhere`` highlights the person's own station (or lifeboat) when it
    is not ``here`` (assembly handling 2 and 3); ``today`` gives the age."""

    person: Person
    standing: Standing | None
    mode: SafetyMode
    here: str
    flag_elsewhere: bool
    today: date


class PersonCard(Horizontal):
    """The card; empty (a hint to scan) until :meth:`show` is called.

    Carries ``-empty`` while nobody is shown. The standing line carries one of
    ``-here``, ``-elsewhere``, ``-not-registered``; the assigned station or lifeboat that
    is not here carries ``-flagged`` when the view asks for it.
    """

    def compose(self) -> ComposeResult:
        """Portrait on the left, the details on the right, and the hint for an empty card."""
        yield Label(EMPTY_HINT, id="card-hint")
        yield Portrait(id="portrait")
        with Vertical(id="person-details"):
            yield Label(id="person-name")
            yield Label(id="person-kind")
            yield Label(id="person-cabin")
            yield Label(id="assigned-station")
            yield Label(id="assigned-lifeboat")
            yield Label(id="person-needs")
            yield Label(id="person-standing")

    def on_mount(self) -> None:
        """Start empty."""
        self.add_class("-empty")

    def show(self, view: CardView) -> None:
        """Show ``view``; the portrait is set apart with :meth:`show_portrait`."""
        person = view.person
        self.remove_class("-empty")
        self._set("#person-name", person.name)
        kind = [person.profile_type or "Profile", person.pax_class]
        if person.birth_date is not None:
            kind.append(f"age {age(person.birth_date, view.today)}")
        self._set("#person-kind", " · ".join(part for part in kind if part))
        self._set("#person-cabin", f"Cabin {person.cabin or '-'} · Card {person.board_card_number or '-'}")
        own = person.assigned_place(view.mode)
        flagged = view.flag_elsewhere and own != view.here
        station = self._set("#assigned-station", f"Muster station {person.muster_station or '-'}")
        lifeboat = self._set("#assigned-lifeboat", f"Lifeboat {person.lifeboat or '-'}")
        station.set_class(flagged and not view.mode.by_lifeboat, "-flagged")
        lifeboat.set_class(flagged and view.mode.by_lifeboat, "-flagged")
        needs = self._set("#person-needs", f"Special needs: {person.special_needs or 'none'}")
        needs.set_class(bool(person.special_needs), "-needs")
        line = self._set("#person-standing", standing_text(view.standing, view.here))
        place = view.standing.place if view.standing else None
        line.set_class(place == view.here, "-here")
        line.set_class(place is not None and place != view.here, "-elsewhere")
        line.set_class(place is None, "-not-registered")

    def show_portrait(self, image: Image.Image | None) -> None:
        """Show ``image`` (None: the text stand-in)."""
        self.query_one(Portrait).image = image

    def _set(self, selector: str, text: str) -> Label:
        """Show ``text`` in a label (a layout pass only when the name's wrapped height changes)."""
        label = self.query_one(selector, Label)
        show_in_place(label, safe(text))
        return label
