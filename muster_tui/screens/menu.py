"""The main menu: Register, Synchronization, Sign out.

Shows who is signed in and whether the device works online or offline, from the device
runtime's one state (as the mode bar does). Choosing Register
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

from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.safe_text import safe
from sync_core.device import Session
from sync_core.device.runtime import DeviceState


def signed_in_line(session: Session, online: bool) -> str:
    """``Signed in: Demo Crew (demo), online`` - who holds the device, and whether it works
    online: a session signed in with the server while the device is online (``online``)."""
    mode = "online" if session.online and online else "offline"
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

    def compose(self) -> ComposeResult:
        """Title, who is signed in, and the menu."""
        with Vertical(id="menu"):
            yield Label("Main menu", classes="screen-title")
            yield Label(id="signed-in")
            yield OptionList(
                Option("F2  Register", id="register"),
                Option("F3  Synchronization", id="synchronization"),
                Option("F8  Sign out", id="sign_out"),
                id="menu-options",
                compact=True,
            )
        yield ModeBar()
        yield Footer()

    def on_mount(self) -> None:
        """Follow the app's device state."""
        self.watch(self.app, "device_state", self._show, init=True)

    def _show(self, state: DeviceState) -> None:
        if state.session is not None:
            self.session = state.session
        show_in_place(self.query_one("#signed-in", Label), safe(signed_in_line(self.session, state.online)))

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
