"""The Register screen: registering people at one muster station or lifeboat.

A card reader types the number and Enter into the card field, which keeps focus; the scan
goes straight to :meth:`Registrar.scan` in a worker and its outcome is shown before
anything else happens (the person card, the emptied card field, counts and the portrait
follow). F6 moves to the search field, where Down / Up / Enter pick a person to show and Esc
returns to the card field. F5 registers the person shown, F7 asks whether to unregister
them, F9 (or Esc) goes back. While a question waits (unregister? or, when the person
belongs to another station and the assembly handling mode asks (2), register here
anyway?), F5 / F9 answer it instead.
Online, when the office sets a ship-wide safety mode other than this session's, a line says
"Safety mode has changed to X" and F4 (Change) goes back to the set-up with X chosen;
offline the session keeps its mode.

Counts (live from the server, or this device's own when offline) refresh whenever an
upload finishes, and ``COUNTS_DELAY`` after a registration unless an upload finishes first
(a scan and the upload it starts make one refresh). A registration that could not be
recorded shows the error and is logged; nothing is pretended.

A scan has 20 ms from the Enter key to the committed registration confirmed on screen:
the people and standings of a synced device are loaded into memory when the
screen opens and again after each sync (:meth:`Registrar.load`), so a scan makes one trip
to a worker thread (the commit); the outcome line is drawn first and alone, the person
card, the emptied card field and the footer in the frames after; a label relays the
screen out only when its height changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from PIL import Image
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label

from muster_tui.widgets.card_input import CardInput
from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.narrow_keys import SUFFIX, label_fits, narrow_twin
from muster_tui.widgets.outcome_line import ASK_KEYS, OutcomeLine
from muster_tui.widgets.person_card import CardView, PersonCard
from muster_tui.widgets.person_search import PersonSearch
from muster_tui.widgets.portrait import PictureSource, decode_portrait
from muster_tui.widgets.safe_text import safe
from muster_tui.widgets.station_counts import LiveNote, MissingPanel, counts_text
from sync_core.device import SyncEngine, SyncStatus
from sync_core.device.connectivity import Connectivity
from sync_core.device.registrar import Outcome, Registrar, Result
from sync_core.errors import SyncError
from sync_core.muster import AssemblyHandling, Person, Place, Standing
from sync_core.protocol import SafetyMode, SyncState

log = logging.getLogger(__name__)
CHANGES_COUNTS = (Result.REGISTERED, Result.UNREGISTERED)
COUNTS_DELAY = 0.1  # seconds of quiet before the counts are fetched again


def title(registrar: Registrar, place: Place) -> str:
    """``General assembly · A Grand Theater``: the safety mode and where crew register."""
    return f"{registrar.mode.label} · {place.code} {place.name}"


class RegisterScreen(Screen[SafetyMode | None]):
    """Registers people through ``registrar`` at ``place``.

    ``engine`` gives the clock (ages on the person card) and publishes the upload statuses
    that refresh the counts and the syncs after which the people are loaded again;
    ``pictures`` looks portraits up (None: never show one).
    ``scan_latencies`` collects, per scan, the seconds from the Enter key to its outcome
    line on screen (the registration committed).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "register", "Register"),
        Binding("f5", "confirm", "Yes"),
        Binding("f7", "unregister", "Unregister"),
        narrow_twin("f7", "unregister", "Unreg."),
        Binding("f9", "back", "Back"),
        Binding("f9", "decline", "No"),
        Binding("f6", "toggle_search", "Search"),
        Binding("f4", "change_mode", "Change"),
        Binding("escape", "back", "Back", show=False),
        Binding("escape", "decline", "No", show=False),
        Binding("pagedown", "scroll_missing(1)", "Missing down", show=False),
        Binding("pageup", "scroll_missing(-1)", "Missing up", show=False),
    ]

    class Published(Message):
        """The engine published ``status``."""

        bubble = False

        def __init__(self, status: SyncStatus) -> None:
            super().__init__()
            self.status = status

    def __init__(
        self, registrar: Registrar, place: Place, engine: SyncEngine, pictures: PictureSource | None
    ) -> None:
        super().__init__()
        self.registrar = registrar
        self.place = place
        self.engine = engine
        self.pictures = pictures
        self.person: Person | None = None
        self.standing: Standing | None = None  # of the person shown
        self.asked: Person | None = None  # a question about them waits for F5 / F9
        self.asked_to_unregister = False  # the question: unregister (else: register anyway)
        self.scan_latencies: list[float] = []
        self._offered = (False, False)
        self._upload = engine.status.upload
        self._synced = _synced(engine.status)
        self._in_turn = asyncio.Lock()
        self.ship_mode: SafetyMode | None = None  # set while the ship's mode is another
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        """Title, where the counts come from, the two fields, counts, the outcome, the
        person card, the missing list and the mode bar."""
        yield Label(safe(title(self.registrar, self.place)), id="register-title", classes="screen-title")
        yield LiveNote(id="live-note")
        with Horizontal(id="card-row", classes="entry"):
            yield Label("Card", classes="name")
            yield CardInput(placeholder="scan, or type and Enter", id="card")
        with Horizontal(id="search-row", classes="entry"):
            yield Label("Search", classes="name")
            registrar = self.registrar
            yield PersonSearch(registrar.book.search, at_once=registrar.search_now, id="person-search")
        yield Label(id="counts")
        yield Label(id="mode-changed")
        yield OutcomeLine(id="register-outcome")
        with Horizontal(id="register-body"):
            yield PersonCard(id="person-card")
            yield MissingPanel(id="missing-panel")
        yield ModeBar()
        yield Footer(compact=True)

    def on_resize(self) -> None:
        """The width class may have changed: offer the F7 label that fits."""
        self.refresh_bindings()

    def on_mount(self) -> None:
        """Focus the card field, follow the engine, load the people and fetch the counts."""
        self.query_one(CardInput).focus()
        self._unsubscribe = self.engine.subscribe(self._published)
        self.watch(self.app, "connectivity", self._follow_ship, init=True)
        self._load()
        self._refresh_counts()

    def on_unmount(self) -> None:
        """Stop following the engine."""
        if self._unsubscribe is not None:
            self._unsubscribe()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Yes / No only while a question waits (Register, Unregister and Back give way);
        Register and Unregister dimmed while nobody is shown; F7's short label when narrow."""
        asking = self.asked is not None
        if action in ("confirm", "decline"):
            return asking
        if not label_fits(self, action, {"unregister"}):
            return False
        action = action.removesuffix(SUFFIX)
        if action == "change_mode":
            return self.ship_mode is not None
        if action in ("register", "unregister", "back") and asking:
            return False
        if action in ("register", "unregister"):
            return True if self.person is not None else None
        return True

    # -- scanning and actions --------------------------------------------------------

    @on(CardInput.Scanned)
    def _scanned(self, event: CardInput.Scanned) -> None:
        text = event.text
        self._act(lambda: self.registrar.scan(text), scanned_at=event.at)

    def action_register(self) -> None:
        """Register the person shown."""
        if (person := self.person) is not None:
            self._act(lambda: self.registrar.register(person))

    def action_confirm(self) -> None:
        """Yes: unregister the person asked about, or register them here anyway."""
        if (person := self.asked) is not None:
            self.asked = None
            if self.asked_to_unregister:
                self._act(lambda: self.registrar.unregister(person))
            else:
                self._act(lambda: self.registrar.register(person, force=True))

    def action_decline(self) -> None:
        """No: leave the person asked about as they stand."""
        if (person := self.asked) is not None:
            self.asked = None
            kept = "Still registered" if self.asked_to_unregister else "Not registered"
            self.query_one(OutcomeLine).show(f"{kept}: {person.name}", "-info")
            self._offer()

    def action_unregister(self) -> None:
        """Ask whether to take back the registration here of the person shown (a person
        not registered here has nothing to take back: the answer says so at once)."""
        if (person := self.person) is None:
            return
        if self.standing is None or self.standing.place != self.registrar.place:
            self._act(lambda: self.registrar.unregister(person))
            return
        self.asked, self.asked_to_unregister = person, True
        self.query_one(OutcomeLine).show(
            f"Unregister {person.name} from {self.registrar.place}?  {ASK_KEYS}", "-ask"
        )
        self._offer()

    def action_unregister_narrow(self) -> None:
        """F7 under its short label: :meth:`action_unregister`."""
        self.action_unregister()

    @work(group="register", exit_on_error=False)
    async def _act(self, run: Callable[[], Awaitable[Outcome]], *, scanned_at: float | None = None) -> None:
        """Run one scan or action after those before it, and show its result."""
        async with self._in_turn:
            outcome: Outcome | None = None
            try:
                outcome = await run()
            except SyncError as exc:
                log.warning("registration failed: %s", exc)
                self._show_problem(str(exc), keep_person=scanned_at is None)
            except Exception as exc:  # noqa: BLE001 - say so on screen, never a silent worker death
                log.exception("registration failed on the device")
                self._show_problem(f"Failed on the device: {type(exc).__name__}: {exc}", keep_person=False)
            else:
                self.asked = outcome.person if outcome.result is Result.ASK else None
                self.asked_to_unregister = False
                self.query_one(OutcomeLine).show_outcome(outcome)
            self.call_after_refresh(self._shown, scanned_at, outcome)
            if outcome is not None:
                self._show_person(outcome.person, outcome.standing)

    def _offer(self) -> None:
        """Refresh the footer when what it offers changes (not on every scan: the footer
        rebuilds itself on each refresh, ~30 ms here), once the result is on screen."""
        offer = (self.person is not None, self.asked is not None)
        if offer != self._offered:
            self._offered = offer
            self.call_after_refresh(self.refresh_bindings)

    def _shown(self, scanned_at: float | None, outcome: Outcome | None) -> None:
        """The result (None: a problem) is on screen: note how long a scan took, empty the
        card field (:meth:`CardInput.clear_spent`) and refresh the counts."""
        if scanned_at is not None:
            if outcome is not None:
                self.scan_latencies.append(time.monotonic() - scanned_at)
            self.query_one(CardInput).clear_spent()
        if outcome is not None and outcome.result in CHANGES_COUNTS:
            self._refresh_counts(COUNTS_DELAY)

    def _show_problem(self, message: str, *, keep_person: bool) -> None:
        self.asked = None
        self.query_one(OutcomeLine).show(message, "-problem")
        if not keep_person:
            self._show_person(None, None)
        self._offer()

    # -- the person card -------------------------------------------------------------

    @on(PersonSearch.Picked)
    def _picked(self, event: PersonSearch.Picked) -> None:
        self.query_one(PersonSearch).reset()
        self.query_one(CardInput).focus()
        self._look_up(event.person)

    @on(PersonSearch.Closed)
    def _search_closed(self) -> None:
        self.query_one(CardInput).focus()

    @work(group="register", exit_on_error=False)
    async def _look_up(self, person: Person) -> None:
        """Show ``person`` (picked from the search) with their standing."""
        async with self._in_turn:
            try:
                standing = await self.registrar.book.standing(person.profile_id, self.registrar.mode)
            except SyncError as exc:
                log.warning("standing of %s unavailable: %s", person.profile_id, exc)
                self._show_problem(str(exc), keep_person=False)
                return
            self.asked = None
            self.query_one(OutcomeLine).show(f"Found: {person.name}. F5 registers here", "-info")
            self._show_person(person, standing)

    def _show_person(self, person: Person | None, standing: Standing | None) -> None:
        """Make ``person`` (None: nobody) the one shown and acted on. The card is drawn once
        the outcome line is on screen, in the next frame: drawing both in one frame took
        ~7 ms here, the outcome line alone under 1 ms."""
        changed = person != self.person
        self.person, self.standing = person, standing
        self._offer()
        self.call_after_refresh(self._draw_card, person, standing, changed)

    def _draw_card(self, person: Person | None, standing: Standing | None, changed: bool) -> None:
        card = self.query_one(PersonCard)
        if person is None:
            card.add_class("-empty")
            return
        registrar = self.registrar
        card.show(
            CardView(
                person=person,
                standing=standing,
                mode=registrar.mode,
                here=registrar.place,
                flag_elsewhere=registrar.handling is not AssemblyHandling.REGISTER_ANYONE,
                today=self.engine.clock.now().date(),
            )
        )
        if changed:
            card.show_portrait(None)
            if person.picture_sha256 and self.pictures is not None:
                self.call_after_refresh(self._load_portrait, person.picture_sha256)

    @work(group="portrait", exclusive=True, exit_on_error=False)
    async def _load_portrait(self, sha256: str) -> None:
        pictures = self.pictures
        assert pictures is not None

        def load() -> Image.Image | None:
            jpeg = pictures(sha256)
            return decode_portrait(jpeg) if jpeg else None

        self.query_one(PersonCard).show_portrait(await asyncio.to_thread(load))

    # -- the engine: people and counts ------------------------------------------------

    def _published(self, status: SyncStatus) -> None:
        self.post_message(self.Published(status))

    def on_register_screen_published(self, message: Published) -> None:
        """A finished upload may have moved the live counts: fetch them again. A finished
        sync may have changed the people: load them again (the scans look them up in the
        store meanwhile)."""
        status = message.status
        upload = status.upload
        if upload.status is not SyncState.IN_PROGRESS and upload != self._upload:
            self._upload = upload
            self._refresh_counts()  # replaces the refresh a scan's registration left waiting
        if not status.running and _synced(status) != self._synced:
            self._synced = _synced(status)
            self._load()

    @work(group="load", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        try:
            await self.registrar.load()
        except Exception:  # noqa: BLE001 - scans still look people up in the store
            log.exception("loading the people into memory failed")

    @work(group="counts", exclusive=True, exit_on_error=False)
    async def _refresh_counts(self, delay: float = 0.0) -> None:
        """Fetch and show the counts after ``delay`` seconds (a newer call replaces a waiting one)."""
        await asyncio.sleep(delay)
        note = self.query_one(LiveNote)
        try:
            station = await self.registrar.counts()
        except SyncError as exc:
            log.warning("counts unavailable: %s", exc)
            show_in_place(note, safe(f"Counts unavailable: {exc}"))
            note.add_class("-offline")
            return
        note.show(station.live)
        show_in_place(self.query_one("#counts", Label), counts_text(station))
        self.query_one(MissingPanel).show(station)

    # -- moving around ---------------------------------------------------------------

    def action_toggle_search(self) -> None:
        """Move between the card field and the search field."""
        search = self.query_one(PersonSearch).field
        (self.query_one(CardInput) if search.has_focus else search).focus()

    def action_scroll_missing(self, pages: int) -> None:
        """Scroll the missing list by ``pages`` pages."""
        self.query_one(MissingPanel).scroll_missing(pages)

    def action_back(self) -> None:
        """Back to the set-up (safety mode and station)."""
        self.dismiss(None)

    def _follow_ship(self, connectivity: Connectivity | None) -> None:
        """Online, say so when the ship's safety mode is not this session's (F4 changes)."""
        ship = connectivity.ship_mode if connectivity is not None and connectivity.online else None
        changed = ship if ship is not None and ship is not self.registrar.mode else None
        if changed is self.ship_mode:
            return
        self.ship_mode = changed
        line = self.query_one("#mode-changed", Label)
        line.update(f"Safety mode has changed to {changed.label}: F4 Change" if changed else "")
        line.set_class(changed is not None, "-shown")
        self.refresh_bindings()

    def action_change_mode(self) -> None:
        """Back to the set-up with the ship's safety mode chosen."""
        self.dismiss(self.ship_mode)


def _synced(status: SyncStatus) -> tuple[object, ...]:
    """What changes with every sync that wrote the device's data, and with a wipe (a delta
    poll that found nothing moves only ``last_delta_sync``)."""
    return status.last_full_sync, status.cursor
