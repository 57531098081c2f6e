"""The main menu without a server: who is signed in, Register's placeholder."""

from __future__ import annotations

from textual.message import Message
from textual.notifications import Notify
from textual.widgets import Label

from muster_tui.app import MusterApp
from muster_tui.screens.menu import REGISTER_SOON, MainMenuScreen
from sync_core.device import Session


def session(display_name: str, *, online: bool) -> Session:
    """A crew member's session on the test server (or offline)."""
    return Session(username="demo", display_name=display_name, role="crew", server_id=None, online=online)


async def test_hostile_display_name_is_shown_literally(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=(80, 24)) as pilot:
        await offline_app.push_screen(MainMenuScreen(session("O'Brien [/x]\x1b]2;pwned\x07", online=False)))
        await pilot.pause()
        shown = str(offline_app.screen.query_one("#signed-in", Label).content)
        assert shown == "Signed in: O'Brien [/x]]2;pwned (demo), offline"


async def test_register_says_coming_soon(offline_app: MusterApp) -> None:
    seen: list[Message] = []
    async with offline_app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
        await offline_app.push_screen(MainMenuScreen(session("Demo Crew", online=True)))
        await pilot.press("f2")
        assert [m.notification.message for m in seen if isinstance(m, Notify)] == [REGISTER_SOON]
        assert isinstance(offline_app.screen, MainMenuScreen)
