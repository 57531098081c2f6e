"""The sign-in screen never stays on "Signing in..." whatever the sign-in raises."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Label

from muster_tui.screens.sign_in import SignInScreen
from tests.tui.helpers import SERVER_URL, settle


async def _broken(username: str, password: str) -> None:
    raise RuntimeError("store file vanished [/x]")


async def test_an_unexpected_error_is_shown_not_swallowed() -> None:
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(SignInScreen(SERVER_URL, _broken))
        await pilot.press(*"demo", "enter", *"demo", "enter")
        await settle(pilot)
        outcome = str(app.screen.query_one("#outcome", Label).content)
        assert outcome == "Sign-in failed on the device: RuntimeError: store file vanished [/x]"
