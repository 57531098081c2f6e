"""The main menu without a server: who is signed in, Register opens its set-up."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import Label

from muster_tui.app import MusterApp
from muster_tui.screens.menu import MainMenuScreen
from muster_tui.screens.register_setup import RegisterSetupScreen
from sync_core.device import Session
from tests.tui.helpers import SERVER_URL, settle


def session(display_name: str, *, online: bool) -> Session:
    """A crew member's session on the test server (or offline)."""
    return Session(username="demo", display_name=display_name, role="crew", server_id=None, online=online)


async def test_hostile_display_name_is_shown_literally(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=(80, 24)) as pilot:
        await offline_app.push_screen(MainMenuScreen(session("O'Brien [/x]\x1b]2;pwned\x07", online=False)))
        await pilot.pause()
        shown = str(offline_app.screen.query_one("#signed-in", Label).content)
        assert shown == "Signed in: O'Brien [/x]]2;pwned (demo), offline"


async def test_register_opens_the_set_up(offline_app: MusterApp) -> None:
    """F2 asks the app for the Register set-up; this device never synced and the server is
    gone, so the set-up says so plainly."""
    seen: list[Message] = []
    async with offline_app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
        signed_in = session("Demo Crew", online=True)
        offline_app.runtime._publish(session=signed_in)  # as if signed in before the server went away
        await offline_app.push_screen(MainMenuScreen(signed_in))
        await pilot.press("f2")
        await settle(pilot)
        assert any(isinstance(m, MainMenuScreen.RegisterRequested) for m in seen)
        assert isinstance(offline_app.screen, RegisterSetupScreen)
        shown = str(offline_app.screen.query_one("#setup-outcome", Label).content)
        assert shown.startswith(f"Server at {SERVER_URL} is unreachable")
