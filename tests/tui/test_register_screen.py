"""Pilot tests of the Register set-up and screen.

Against the real server (tests/conftest.py: the `small` ship, seed 7) for the flows that
need one: sign in, full sync, F2, set-up, card scans, the wrong-station rules under each
assembly handling mode (changed through the office admin API and a delta sync), search,
hostile names, and an online-only device whose server goes away. Without a server (the
hand-made ship of tests/tui/helpers.py) for bursts of scans, unregistering, hostile bytes
and a corrupt portrait.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

import duckdb
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, OptionList

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register import RegisterScreen
from muster_tui.screens.register_setup import Chosen, RegisterDesk, RegisterSetupScreen
from muster_tui.widgets.card_input import CardInput
from muster_tui.widgets.outcome_line import ASK_KEYS
from muster_tui.widgets.person_card import PersonCard
from muster_tui.widgets.person_search import PersonSearch, SearchResults
from muster_tui.widgets.portrait import Portrait, can_show_pictures
from muster_tui.widgets.station_counts import LIVE_NOTE, MissingList
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient, sign_in
from sync_core.device.registrar import Book, LocalBook, Registrar
from sync_core.device.status import UploadStatus
from sync_core.muster import Place
from sync_core.protocol import RecordChange, SafetyMode, SyncState
from sync_core.server.process import ServerProcess
from tests.tui.helpers import (
    CARDS,
    HOSTILE_NAME,
    SERVER_URL,
    SYNCED_AT,
    fill_register_ship,
    footer_fits,
    offered_actions,
    open_register,
    registrar_on,
    settle,
)

SIZE = (80, 24)
Row = dict[str, str]


@pytest.fixture
def device_store(device_store_path: Path) -> Iterator[DeviceStore]:
    """A fresh device store, closed after the test (the app does not own it)."""
    store = DeviceStore(device_store_path)
    yield store
    store.close()


def people(ship_dir: Path, where: str) -> list[Row]:
    """Reservations of the `small` ship matching the SQL condition ``where``, by profile id."""
    relation = duckdb.sql(
        f"SELECT profile_id, first_name, last_name, board_card_number AS card, muster_station "
        f"FROM '{ship_dir}/reservations.parquet' WHERE {where} ORDER BY profile_id"
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def on_board(ship_dir: Path, station: str) -> list[Row]:
    """On-board people assigned to muster station ``station``."""
    return people(ship_dir, f"movement_status = 'Onboard' AND muster_station = '{station}'")


def text(screen: RegisterScreen, selector: str) -> str:
    """The plain text a label of the screen shows."""
    return str(screen.query_one(selector, Label).content)


def counts(screen: RegisterScreen) -> tuple[int, int, int]:
    """(registered here in all, missing, assigned) as the counts line shows them; its
    figures add up."""
    shown = text(screen, "#counts")
    assigned, own, away, missing = (int(n) for n in re.findall(r"\d+", shown)[:4])
    assert own + away + missing == assigned, shown
    visitors = re.search(r"(\d+) from other stations", shown)
    return own + (int(visitors[1]) if visitors else 0), missing, assigned


def registrations(store: DeviceStore) -> list[tuple[str, str, str]]:
    """(profile_id, action, muster_station) of every registration in the device store."""
    with store.db.cursor() as cur:
        return cur.execute(
            "SELECT profile_id, action, muster_station FROM registrations "
            "ORDER BY registered_utc, registration_id"
        ).fetchall()


async def until(pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait until ``condition()`` holds (e.g. an upload reached the server and the live
    counts were fetched again)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def scan(pilot: Pilot[None], card: str) -> None:
    """The reader's burst: the digits and Enter with no wait between keys."""
    await pilot.press(*card, "enter")
    await settle(pilot)


async def start_registering(pilot: Pilot[None]) -> RegisterScreen:
    """From the main menu: F2, then F5 on the highlighted (default) mode and station."""
    await pilot.press("f2")
    await settle(pilot)
    assert isinstance(pilot.app.screen, RegisterSetupScreen)
    await pilot.press("f5")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, RegisterScreen)
    return screen


async def signed_in(pilot: Pilot[None]) -> None:
    """Sign in as demo (the first sign-in runs the full sync) and land on the menu."""
    await pilot.press(*"demo", "enter", *"demo", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, MainMenuScreen)


async def set_handling(server: ServerProcess, app: MusterApp, mode: int) -> None:
    """The office sets ``assembly_handling_mode``; the device takes it with a delta sync."""
    async with ServerClient(server.url) as office:
        await office.sign_in("office", "office")
        change = RecordChange(
            key="parameters", id="assembly_handling_mode", op="set", fields={"value": str(mode)}
        )
        await office.post_changes([change])
    await app.engine.delta_sync()


# -- against the real server -----------------------------------------------------------


async def test_scan_registers_then_already_registered(
    own_server: ServerProcess, device_store: DeviceStore, ship_dir: Path
) -> None:
    person = on_board(ship_dir, "A")[0]
    app = make_app(own_server.url, device_store, clock=FrozenClock(SYNCED_AT), tz=UTC)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot)
        await pilot.press("f2")
        await settle(pilot)
        set_up = app.screen
        assert isinstance(set_up, RegisterSetupScreen)
        assert set_up.mode is SafetyMode.GENASS  # the parameter safety_mode
        await pilot.press("f5")  # station A, the parameter default_muster_station
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen)
        assert text(screen, "#register-title") == "General assembly · A Grand Theater"
        assert text(screen, "#live-note") == LIVE_NOTE
        registered, missing, assigned = counts(screen)
        assert (registered, missing) == (0, assigned)

        await scan(pilot, person["card"])
        name = f"{person['last_name']}, {person['first_name']}"
        assert text(screen, "#register-outcome") == f"Registered: {name}"
        assert text(screen, "#person-name") == name
        assert text(screen, "#person-standing") == "Registered here at 23:16 UTC"
        assert registrations(device_store) == [(person["profile_id"], "register", "A")]
        assert screen.query_one(CardInput).has_focus and screen.query_one(CardInput).value == ""
        assert screen.query_one("#search", Input).value == ""
        assert not screen.query_one(SearchResults).display
        await until(pilot, lambda: counts(screen) == (1, assigned - 1, assigned))  # live, after the upload

        await scan(pilot, person["card"])
        assert text(screen, "#register-outcome") == "Already registered at A at 23:16 UTC"
        assert len(registrations(device_store)) == 1
        assert len(screen.scan_latencies) == 2 and all(0 < s < 2 for s in screen.scan_latencies)


async def test_wrong_station_under_each_handling_mode(
    own_server: ServerProcess, device_store: DeviceStore, ship_dir: Path
) -> None:
    first, second, third = on_board(ship_dir, "B")[:3]
    app = make_app(own_server.url, device_store, clock=FrozenClock(SYNCED_AT), tz=UTC)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot)
        screen = await start_registering(pilot)  # handling 2 (ask): the fixture default

        await scan(pilot, first["card"])
        assert text(screen, "#register-outcome") == f"Assigned to B, not A. Register here anyway?  {ASK_KEYS}"
        assert screen.query_one("#assigned-station", Label).has_class("-flagged")
        await pilot.press("f9")  # No
        assert isinstance(app.screen, RegisterScreen)
        assert text(screen, "#register-outcome").startswith("Not registered: ")
        assert registrations(device_store) == []
        await scan(pilot, first["card"])
        registered, missing, assigned = counts(screen)
        await pilot.press("f5")  # Yes
        await settle(pilot)
        assert text(screen, "#register-outcome").startswith("Registered: ")
        assert registrations(device_store) == [(first["profile_id"], "register", "A")]
        await until(pilot, lambda: counts(screen) == (registered + 1, missing, assigned))
        assert text(screen, "#counts").endswith(" · Also registered here: 1 from other stations")

        await set_handling(own_server, app, 3)
        await pilot.press("f9", "f5")  # back to the set-up, start again: the new rules
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen)
        await scan(pilot, second["card"])
        assert text(screen, "#register-outcome") == "Refused: Assigned to B, not A"
        assert screen.query_one("#assigned-station", Label).has_class("-flagged")
        assert text(screen, "#person-standing") == "Not registered"
        assert len(registrations(device_store)) == 1

        await set_handling(own_server, app, 1)
        await pilot.press("f9", "f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen)
        await scan(pilot, third["card"])
        assert text(screen, "#register-outcome").startswith("Registered: ")
        assert not screen.query_one("#assigned-station", Label).has_class("-flagged")
        assert registrations(device_store)[-1] == (third["profile_id"], "register", "A")


async def test_unknown_cards_search_and_hostile_names(
    live_server: ServerProcess, device_store: DeviceStore, ship_dir: Path
) -> None:
    """Read-only on the shared server: nothing here registers anybody."""
    (markup,) = people(ship_dir, "first_name = '[bold]x[/]'")
    dueñas = people(ship_dir, "last_name = 'Dueñas'")
    dueñas.sort(key=lambda row: (row["first_name"], row["profile_id"]))  # the search's order
    app = make_app(live_server.url, device_store)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot)
        screen = await start_registering(pilot)

        await scan(pilot, "0000000000")
        assert text(screen, "#register-outcome") == "Unknown card: No profile has card 0000000000"
        screen.query_one(CardInput).value = "12\x1b[2J"
        await pilot.press("enter")
        await settle(pilot)
        shown = text(screen, "#register-outcome")
        assert shown.startswith("Unknown card: '12\\") and "x1b[2J' is not a card number" in shown
        assert "\x1b" not in shown
        assert screen.query_one(PersonCard).has_class("-empty")

        await pilot.press("f6", *"due")
        await settle(pilot)
        search = screen.query_one(PersonSearch)
        assert [person.profile_id for person in search.found] == [row["profile_id"] for row in dueñas]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert text(screen, "#person-name") == f"Dueñas, {dueñas[1]['first_name']}"
        assert text(screen, "#person-standing") == "Not registered"
        assert screen.query_one(CardInput).has_focus and search.field.value == ""

        await pilot.press("f6", *"Markup", "enter")
        await settle(pilot)
        assert text(screen, "#person-name") == "Markup, [bold]x[/]"
        assert markup["card"] in text(screen, "#person-cabin")

        missing = screen.query_one(MissingList)
        assert missing.option_count == counts(screen)[1] > missing.size.height
        await pilot.press("pagedown")
        assert missing.scroll_y > 0 and screen.query_one(CardInput).has_focus
        assert registrations(device_store) == []


async def test_online_only_device_whose_server_goes_away(
    own_server: ServerProcess, device_store: DeviceStore, ship_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Never synced: the set-up and the registrar read the server; once it is gone a scan
    says so on screen and in the log, and shows nobody."""
    first, second = on_board(ship_dir, "A")[:2]
    app = make_app(own_server.url, device_store, clock=FrozenClock(SYNCED_AT), tz=UTC)
    async with app.run_test(size=SIZE) as pilot:
        app.session = await sign_in(app.client, app.store, "demo", "demo")
        await app.push_screen(MainMenuScreen(app.session))
        screen = await start_registering(pilot)
        assert not screen.registrar.on_store
        await scan(pilot, first["card"])
        assert text(screen, "#register-outcome").startswith("Registered: ")
        await until(pilot, lambda: counts(screen)[0] == 1)

        own_server.stop()
        with caplog.at_level(logging.WARNING, logger="muster_tui.screens.register"):
            await scan(pilot, second["card"])
        shown = text(screen, "#register-outcome")
        assert shown.startswith(f"Server at {own_server.url} is unreachable")
        assert screen.query_one(PersonCard).has_class("-empty")
        assert any(shown in record.getMessage() for record in caplog.records)
        assert registrations(device_store) == []  # online only: nothing was queued


# -- without a server (the hand-made ship) ----------------------------------------------


async def test_a_burst_of_scans_is_handled_in_order(offline_app: MusterApp, tui_store: DeviceStore) -> None:
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot)
        await pilot.press(*CARDS["P1"], "enter", *CARDS["P4"], "enter", *CARDS["P5"], "enter")
        await settle(pilot)
        assert [row[0] for row in registrations(tui_store)][-3:] == ["P1", "P4", "P5"]
        assert text(screen, "#register-outcome") == "Registered: Escape, Ro[31mse]0;pwned"
        assert HOSTILE_NAME not in text(screen, "#person-name")
        assert screen.query_one("#search", Input).value == "" and screen.query_one(CardInput).value == ""
        assert counts(screen) == (4, 1, 5)
        assert len(screen.scan_latencies) == 3


async def test_a_finished_upload_refreshes_the_counts(offline_app: MusterApp, tui_store: DeviceStore) -> None:
    """A registration the screen did not make (here: another registrar's) shows in the
    counts once an upload status arrives from the engine."""
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot)
        assert counts(screen) == (1, 4, 5)
        other = await registrar_on(tui_store, offline_app.engine.clock, SafetyMode.GENASS, "A", live=True)
        await other.scan(CARDS["P4"])
        await settle(pilot)
        assert counts(screen) == (1, 4, 5)
        offline_app.engine.show_upload(UploadStatus(status=SyncState.SUCCESS, sent=1))
        await settle(pilot)
        assert counts(screen) == (2, 3, 5)


async def test_unregister_asks_then_takes_back_a_registration(
    offline_app: MusterApp, tui_store: DeviceStore
) -> None:
    """F7 asks first: F9 keeps the registration, F5 takes it back."""
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot, live=False)
        await scan(pilot, CARDS["P1"])
        assert counts(screen) == (2, 3, 5)
        await pilot.press("f7")
        await settle(pilot)
        assert text(screen, "#register-outcome") == f"Unregister Dueñas, Mauro from A?  {ASK_KEYS}"
        await pilot.press("f9")  # No
        await settle(pilot)
        assert isinstance(offline_app.screen, RegisterScreen)
        assert text(screen, "#register-outcome") == "Still registered: Dueñas, Mauro"
        assert [row[1] for row in registrations(tui_store)][-1] == "register"
        await pilot.press("f7", "f5")  # Yes
        await settle(pilot)
        assert text(screen, "#register-outcome") == "Unregistered: Dueñas, Mauro"
        assert text(screen, "#person-standing") == "Not registered"
        assert counts(screen) == (1, 4, 5)
        await pilot.press("f7")
        await settle(pilot)
        assert text(screen, "#register-outcome").startswith("Not registered here")
        assert [row[1] for row in registrations(tui_store)][-2:] == ["register", "unregister"]


async def test_portraits_and_their_stand_in(
    offline_app: MusterApp, tui_store: DeviceStore, caplog: pytest.LogCaptureFixture
) -> None:
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot)
        portrait = screen.query_one(Portrait)
        await scan(pilot, CARDS["P1"])
        assert portrait.image is not None and portrait.image.mode == "RGB"
        with caplog.at_level(logging.WARNING, logger="muster_tui.widgets.portrait"):
            await scan(pilot, CARDS["P3"])  # a corrupt JPEG
        assert portrait.image is None
        assert any("does not decode" in record.getMessage() for record in caplog.records)
        await scan(pilot, CARDS["P4"])  # no portrait at all
        assert portrait.image is None


def test_pictures_need_colour(monkeypatch: pytest.MonkeyPatch, tui_store: DeviceStore) -> None:
    """NO_COLOR or a 16-colour terminal: the text stand-in; 256 colours or more: pixels."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert can_show_pictures(make_app(SERVER_URL, tui_store))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not can_show_pictures(make_app(SERVER_URL, tui_store))
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("COLORTERM")
    monkeypatch.setenv("TERM", "xterm")
    assert not can_show_pictures(make_app(SERVER_URL, tui_store))


async def test_esc_in_the_search_returns_to_the_card_field(
    offline_app: MusterApp, tui_store: DeviceStore
) -> None:
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot, live=False)
        await pilot.press("f6", *"mar", "escape")
        await settle(pilot)
        assert offline_app.screen is screen
        search = screen.query_one(PersonSearch)
        assert screen.query_one(CardInput).has_focus
        assert search.field.value == "" and not screen.query_one(SearchResults).display
        await pilot.press("escape")  # from the card field: back
        await settle(pilot)
        assert offline_app.screen is not screen


async def test_the_set_up_keeps_the_last_choice_and_says_where_tab_goes(
    offline_app: MusterApp, tui_store: DeviceStore
) -> None:
    """Station B chosen once is highlighted again the next time the set-up opens (the
    session's :class:`Chosen`), over the parameter's A; the footer names Tab's target."""
    fill_register_ship(tui_store)
    chosen = Chosen()

    async def book() -> Book:
        return LocalBook(tui_store)

    async def registrar(mode: SafetyMode, place: str) -> Registrar:
        return await registrar_on(tui_store, offline_app.engine.clock, mode, place, live=False)

    desk = RegisterDesk(book, registrar, offline_app.engine, None, chosen)
    async with offline_app.run_test(size=SIZE) as pilot:
        await offline_app.push_screen(RegisterSetupScreen(desk))
        await settle(pilot)
        assert "To the list" in offered_actions(offline_app.screen)
        await pilot.press("tab")
        offered = offered_actions(offline_app.screen)
        assert "To safety mode" in offered and "To the list" not in offered
        await pilot.press("down", "f5")
        await settle(pilot)
        assert isinstance(offline_app.screen, RegisterScreen) and offline_app.screen.place.code == "B"
        await pilot.press("f9", "f9")
        await settle(pilot)
        await offline_app.push_screen(RegisterSetupScreen(desk))
        await settle(pilot)
        set_up = offline_app.screen
        assert isinstance(set_up, RegisterSetupScreen)
        assert set_up.places[set_up.query_one("#places", OptionList).highlighted or 0].code == "B"


@pytest.mark.parametrize(
    ("typed", "found"),
    [("mauro duenas", ["P1"]), ("DUEÑAS m", ["P1"]), ("o'b siob", ["P2"]), ("anh nguyen", ["P6"]),
     ("thi", ["P6"]), ("1026", ["P1"]), ("2457", ["P2"]), ("mauro x", [])],
)  # fmt: skip
async def test_search_by_words_in_any_order_without_accents(
    offline_app: MusterApp, tui_store: DeviceStore, typed: str, found: list[str]
) -> None:
    """Several words in any order across first and last name, any case and accents;
    cabin and card numbers by their start; each result shows card number and station."""
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot, live=False)
        await pilot.press("f6", *typed)
        await settle(pilot)
        search = screen.query_one(PersonSearch)
        assert [person.profile_id for person in search.found] == found
        if found:
            line = str(screen.query_one(SearchResults).get_option_at_index(0).prompt)
            person = search.found[0]
            assert line.endswith(f"card {person.board_card_number}  station {person.muster_station}")


async def test_the_footer_fits_40_columns(offline_app: MusterApp, tui_store: DeviceStore) -> None:
    """With a person shown every key is offered; at 40 columns F7 takes its short label."""
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=(40, 20)) as pilot:
        screen = await open_register(pilot, live=False)
        await scan(pilot, CARDS["P1"])
        assert footer_fits(screen) == ["Register", "Unreg.", "Back", "Search"]
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert footer_fits(screen) == ["Register", "Unregister", "Back", "Search"]


async def test_long_texts_wrap_at_40_columns(offline_app: MusterApp, tui_store: DeviceStore) -> None:
    """A lifeboat's long name in the title and a long special need: whole, on more lines."""
    fill_register_ship(tui_store)
    boat = Place("LB01", "Lifeboat 1, starboard side, deck 5")
    async with offline_app.run_test(size=(40, 20)) as pilot:
        screen = await open_register(pilot, SafetyMode.ASHSHP, boat, live=False)
        title = screen.query_one("#register-title", Label)
        assert text(screen, "#register-title").endswith("deck 5") and title.size.height == 2
        await scan(pilot, CARDS["P2"])
        needs = screen.query_one("#person-needs", Label)
        assert needs.size.height * needs.size.width >= len(text(screen, "#person-needs")) > needs.size.width
