"""The serial profile's output (muster_tui/terminal): pure ASCII, no 256-colour or true-colour
sequence, a card scan well under its byte budget, and a terminal replaying the bytes sent
showing exactly the screen Textual meant.

The app paints to :class:`tests.tui.serial_terminal.SerialLine` (the diffing writer, an
update per frame) instead of a pty; the real-terminal test is tests/tui/test_serial_tmux.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label

from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register import RegisterScreen
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.card_input import CardInput
from sync_core.device import DeviceStore
from sync_core.protocol import SyncState
from sync_core.server.process import ServerProcess
from tests.registering import onboard_cards
from tests.tui.helpers import (
    CARDS,
    failed_status,
    fill_register_ship,
    open_register,
    settle,
    show_status,
    succeeded_status,
)
from tests.tui.serial_terminal import SerialLine, serial_app

SIZES = {"wide": (80, 24), "narrow": (40, 20)}
SCAN_BUDGET = 2048  # bytes a card scan may cost on a 9,600-baud line (about 2 s)
NOT_8_COLOURS = re.compile(r"\x1b\[[0-9;]*[34]8;[25]")  # 256-colour or true-colour SGR


def assert_sent_as_meant(line: SerialLine) -> None:
    """What was sent so far is ASCII in at most 8 colours, and shows what Textual meant."""
    sent = line.sent.getvalue()
    assert sent.isascii()
    assert not NOT_8_COLOURS.search(sent)
    assert line.terminal() == line.intended()


async def scan(pilot: Pilot[None], card: str, *, typed: bool = False) -> None:
    """The card reader's burst: the digits at once (or ``typed`` key by key, each echoed),
    then Enter; waits for the screen to settle."""
    if typed:
        await pilot.press(*card)
    else:
        pilot.app.screen.query_one(CardInput).value = card
    await pilot.press("enter")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
async def test_every_screen_is_ascii_and_a_scan_fits_the_line(tui_store: DeviceStore, size: str) -> None:
    """Sign-in, the Register screen (accents, CJK and hostile names, a person from another
    station, a search) and the Synchronization screen (success, failure)."""
    fill_register_ship(tui_store)
    line = SerialLine(*SIZES[size])
    app = serial_app(tui_store, line)
    async with app.run_test(size=SIZES[size], headless=False) as pilot:
        await settle(pilot)
        assert_sent_as_meant(line)
        assert "Username" in "\n".join(line.replay.display)
        screen = await open_register(pilot)
        assert_sent_as_meant(line)
        before = line.sent_bytes()
        await scan(pilot, CARDS["P1"], typed=True)
        assert "Mauro" in str(screen.query_one("#person-name", Label).content)
        assert line.sent_bytes() - before < SCAN_BUDGET // 2
        for profile_id in ("P5", "P6", "P7"):
            await scan(pilot, CARDS[profile_id])
            assert_sent_as_meant(line)
        await pilot.press("f9")  # No: P7 belongs to another station
        await pilot.press("f6", *"due", "enter")
        await settle(pilot)
        assert_sent_as_meant(line)
        for status in (succeeded_status(), failed_status()):
            await show_status(pilot, status)
            assert_sent_as_meant(line)


async def test_replayed_session_shows_what_textual_meant(
    own_server: ServerProcess, ship_dir: Path, tmp_path: Path
) -> None:
    """Against the real server: sign-in and the first full sync (its screen closes when
    done), 20 scans at the Register screen, a search, then the Synchronization screen; after
    each step a terminal that replays the bytes sent shows the screen Textual meant, cell
    for cell."""
    line = SerialLine(80, 24)
    store = DeviceStore(tmp_path / "device.duckdb")
    try:
        app = serial_app(store, line, own_server.url)
        async with app.run_test(size=(80, 24), headless=False) as pilot:
            await pilot.press(*"demo", "enter", *"demo", "enter")
            await settle(pilot)
            assert isinstance(app.screen, MainMenuScreen)
            assert app.engine.status.status is SyncState.SUCCESS
            assert_sent_as_meant(line)
            await pilot.press("f2")
            await settle(pilot)
            await pilot.press("f5")
            await settle(pilot)
            assert isinstance(app.screen, RegisterScreen)
            assert_sent_as_meant(line)
            for card, _, _ in onboard_cards(ship_dir, app.screen.place.code, 20):
                await scan(pilot, card)
                assert line.terminal() == line.intended()
            await pilot.press("f6", *"an", "enter")
            await settle(pilot)
            assert_sent_as_meant(line)
            await pilot.press("f9", "f9")
            await settle(pilot)
            await pilot.press("f3")
            await settle(pilot)
            assert isinstance(app.screen, SynchronizationScreen)
            assert_sent_as_meant(line)
    finally:
        store.close()
