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
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

import duckdb
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label

from muster_tui.app import MusterApp, make_app
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register import RegisterScreen
from muster_tui.screens.register_setup import RegisterSetupScreen
from muster_tui.widgets.card_input import CardInput
from muster_tui.widgets.outcome_line import ASK_KEYS
from muster_tui.widgets.person_card import PersonCard
from muster_tui.widgets.person_search import PersonSearch, SearchResults
from muster_tui.widgets.portrait import Portrait, can_show_pictures
from muster_tui.widgets.station_counts import LIVE_NOTE, MissingList
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore, ServerClient
from sync_core.device.status import UploadStatus
from sync_core.protocol import RecordChange, SafetyMode, SyncState
from sync_core.server.process import ServerProcess
from tests.tui.helpers import (
    CARDS,
    HOSTILE_NAME,
    SERVER_URL,
    SYNCED_AT,
    fill_register_ship,
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
    """(registered, not yet registered, assigned) as the counts line shows them."""
    words = text(screen, "#counts").split()
    return int(words[1]), int(words[6]), int(words[9])


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
        assert text(screen, "#person-standing") == "Registered here at 23:16"
        assert registrations(device_store) == [(person["profile_id"], "register", "A")]
        assert screen.query_one(CardInput).has_focus and screen.query_one(CardInput).value == ""
        assert screen.query_one("#search", Input).value == ""
        assert not screen.query_one(SearchResults).display
        await until(pilot, lambda: counts(screen) == (1, assigned - 1, assigned))  # live, after the upload

        await scan(pilot, person["card"])
        assert text(screen, "#register-outcome") == "Already registered at A at 23:16"
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
        await pilot.press("f5")  # Yes
        await settle(pilot)
        assert text(screen, "#register-outcome").startswith("Registered: ")
        assert registrations(device_store) == [(first["profile_id"], "register", "A")]

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
        signed_in = await app.runtime.sign_in("demo", "demo")
        await app.push_screen(MainMenuScreen(signed_in.session))
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


async def test_unregister_takes_back_a_registration(offline_app: MusterApp, tui_store: DeviceStore) -> None:
    fill_register_ship(tui_store)
    async with offline_app.run_test(size=SIZE) as pilot:
        screen = await open_register(pilot, live=False)
        await scan(pilot, CARDS["P1"])
        assert counts(screen) == (2, 3, 5)
        await pilot.press("f7")
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
