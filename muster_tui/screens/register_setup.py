"""Setting up a Register session: the safety mode, then the muster station (or, for
abandon ship, the lifeboat), then F5 (or Enter on the place) opens the Register screen.

The general parameter ``safety_mode`` is highlighted first, and ``default_muster_station``
among the stations, until a Register screen has been opened: from then on the session's
last choice (:class:`Chosen`) is. Tab moves between the two lists (the footer says where).

Where the data comes from (the device store, or the server for a
device that never completed a full sync) is the app's business (:class:`RegisterDesk`); a
device with neither gets the error on screen, e.g. "Server at ... is unreachable".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from muster_tui.screens.register import RegisterScreen
from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.portrait import PictureSource
from muster_tui.widgets.safe_text import safe
from sync_core.device import SyncEngine
from sync_core.device.registrar import Book, Registrar, default_mode
from sync_core.errors import MusterError, SyncError
from sync_core.muster import Place
from sync_core.protocol import SafetyMode

log = logging.getLogger(__name__)
MODES = list(SafetyMode)
NO_PLACES = "No muster stations or lifeboats in the data"


@dataclass
class Chosen:
    """The safety mode and place code last chosen in a session (None: nothing yet)."""

    mode: SafetyMode | None = None
    place: str | None = None


@dataclass(frozen=True)
class RegisterDesk:
    """What registering needs from the app: ``book()`` for modes and places before a
    station is chosen, ``registrar(mode, place)`` once it is, the ``engine`` (clock and
    upload statuses), where portraits come from (``pictures``; None: show none) and the
    session's last choice (``chosen``, kept by the app for the session)."""

    book: Callable[[], Awaitable[Book]]
    registrar: Callable[[SafetyMode, str], Awaitable[Registrar]]
    engine: SyncEngine
    pictures: PictureSource | None
    chosen: Chosen = field(default_factory=Chosen)


def place_kind(mode: SafetyMode) -> str:
    """``Lifeboat`` in abandon ship, else ``Muster station``."""
    return "Lifeboat" if mode.by_lifeboat else "Muster station"


class RegisterSetupScreen(Screen[None]):
    """Choose where to register; dismissed with F9 / Esc (back to the menu)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "start", "Start"),
        Binding("f9", "back", "Menu"),
        Binding("tab", "to_places", "To the list"),
        Binding("tab", "to_modes", "To safety mode"),
        Binding("escape", "back", "Menu", show=False),
    ]

    def __init__(self, desk: RegisterDesk) -> None:
        super().__init__()
        self.desk = desk
        self.book: Book | None = None
        self.places: list[Place] = []

    def compose(self) -> ComposeResult:
        """Title, the two lists, a line for problems and the mode bar."""
        with Vertical(id="setup"):
            yield Label("Register", classes="screen-title")
            yield Label("Safety mode", classes="section-title")
            yield OptionList(*(Option(mode.label) for mode in MODES), id="modes", compact=True)
            yield Label(place_kind(SafetyMode.GENASS), id="places-title", classes="section-title")
            yield OptionList(id="places", compact=True)
            yield Label(id="setup-outcome")
        yield ModeBar()
        yield Footer()

    def on_mount(self) -> None:
        """Find the book, then highlight the default safety mode."""
        self._open_book()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Tab offers the list the focus is not on (the footer follows the focus)."""
        on_places = self.focused is self.query_one("#places", OptionList)
        if action == "to_places":
            return not on_places
        if action == "to_modes":
            return on_places
        return True

    def action_to_places(self) -> None:
        """Tab from the safety mode: to the station (or lifeboat) list."""
        self.query_one("#places", OptionList).focus()

    def action_to_modes(self) -> None:
        """Tab from the list: back to the safety mode."""
        self.query_one("#modes", OptionList).focus()

    @property
    def mode(self) -> SafetyMode:
        """The highlighted safety mode."""
        return MODES[self.query_one("#modes", OptionList).highlighted or 0]

    @work(exclusive=True, exit_on_error=False)
    async def _open_book(self) -> None:
        try:
            self.book = book = await self.desk.book()
            mode = self.desk.chosen.mode or await default_mode(book)
        except SyncError as exc:
            self._problem(exc)
            return
        modes = self.query_one("#modes", OptionList)
        with modes.prevent(OptionList.OptionHighlighted):
            modes.highlighted = MODES.index(mode)
        modes.focus()
        self._load_places(mode)

    @on(OptionList.OptionHighlighted, "#modes")
    def _mode_highlighted(self) -> None:
        if self.book is not None:
            self._load_places(self.mode)

    @work(group="places", exclusive=True, exit_on_error=False)
    async def _load_places(self, mode: SafetyMode) -> None:
        assert self.book is not None
        try:
            places = await self.book.places(mode)
            chosen = self.desk.chosen
            if chosen.mode is mode:
                default = chosen.place
            elif mode.by_lifeboat:
                default = None
            else:
                default = await self.book.parameter("default_muster_station")
        except SyncError as exc:
            self._problem(exc)
            return
        self.places = places
        self.query_one("#places-title", Label).update(place_kind(mode))
        listed = self.query_one("#places", OptionList)
        listed.set_options(Option(safe(f"{place.code}  {place.name}")) for place in places)
        codes = [place.code for place in places]
        listed.highlighted = codes.index(default) if default in codes else (0 if places else None)
        self._say("" if places else NO_PLACES)

    @on(OptionList.OptionSelected, "#modes")
    def _mode_chosen(self) -> None:
        self.query_one("#places", OptionList).focus()

    @on(OptionList.OptionSelected, "#places")
    def action_start(self) -> None:
        """Open the Register screen for the highlighted mode and place."""
        if self.book is None:  # no data to choose from: the reason stays on screen
            return
        index = self.query_one("#places", OptionList).highlighted
        if index is None or index >= len(self.places):
            self._say(f"Choose a {place_kind(self.mode).lower()}", problem=True)
            return
        self._start(self.mode, self.places[index])

    @work(group="start", exclusive=True, exit_on_error=False)
    async def _start(self, mode: SafetyMode, place: Place) -> None:
        try:
            registrar = await self.desk.registrar(mode, place.code)
        except MusterError as exc:
            self._problem(exc)
            return
        self._say("")
        self.desk.chosen.mode, self.desk.chosen.place = mode, place.code
        screen = RegisterScreen(registrar, place, self.desk.engine, self.desk.pictures)
        await self.app.push_screen(screen, self._choose_mode)

    def _choose_mode(self, mode: SafetyMode | None) -> None:
        """Back from Register: with the ship's new safety mode (Change), choose it here."""
        if mode is not None:
            self.query_one("#modes", OptionList).highlighted = MODES.index(mode)

    def action_back(self) -> None:
        """Back to the main menu."""
        self.dismiss()

    def _problem(self, exc: MusterError) -> None:
        log.warning("register set-up: %s", exc)
        self._say(str(exc), problem=True)

    def _say(self, message: str, *, problem: bool = False) -> None:
        outcome = self.query_one("#setup-outcome", Label)
        outcome.update(safe(message))
        outcome.set_class(problem, "-problem")
