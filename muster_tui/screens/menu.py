"""The main menu: Register, Synchronization, Sign out.

Shows who is signed in and whether the session is online or offline. Choosing Register
or Synchronization posts :class:`MainMenuScreen.RegisterRequested` or
:class:`MainMenuScreen.SynchronizationRequested` for the app to act on; signing out
dismisses the screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.safe_text import safe
from sync_core.device import Session


def signed_in_line(session: Session) -> str:
    """``Signed in: Demo Crew (demo), online`` - who holds the device, in which mode."""
    mode = "online" if session.online else "offline"
    return f"Signed in: {session.display_name} ({session.username}), {mode}"


class MainMenuScreen(Screen[None]):
    """The menu for the signed-in ``session``; dismissed on sign-out."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "register", "Register"),
        Binding("f3", "synchronization", "Sync"),
        Binding("f8", "sign_out", "Sign out"),
    ]

    class RegisterRequested(Message):
        """The crew member asked to register people (the Register set-up)."""

    class SynchronizationRequested(Message):
        """The crew member asked for the Synchronization screen."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def session_online(self, session: Session) -> None:
        """The offline session is now ``session``, signed in with the server."""
        self.session = session
        self.query_one("#signed-in", Label).update(safe(signed_in_line(session)))

    def compose(self) -> ComposeResult:
        """Title, who is signed in, and the menu."""
        with Vertical(id="menu"):
            yield Label("Main menu", classes="screen-title")
            yield Label(safe(signed_in_line(self.session)), id="signed-in")
            yield OptionList(
                Option("F2  Register", id="register"),
                Option("F3  Synchronization", id="synchronization"),
                Option("F8  Sign out", id="sign_out"),
                id="menu-options",
                compact=True,
            )
        yield ModeBar()
        yield Footer()

    @on(OptionList.OptionSelected)
    async def _choose(self, event: OptionList.OptionSelected) -> None:
        await self.run_action(event.option_id or "")

    def action_register(self) -> None:
        """Ask the app for the Register set-up."""
        self.post_message(self.RegisterRequested())

    def action_synchronization(self) -> None:
        """Ask the app for the Synchronization screen."""
        self.post_message(self.SynchronizationRequested())

    def action_sign_out(self) -> None:
        """End the session: back to sign-in."""
        self.dismiss()
