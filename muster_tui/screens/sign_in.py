"""The sign-in screen: the first thing a crew member sees.

Signing in runs in a worker. Wrong credentials show the product's "Invalid login, please try
again" and change nothing else; an unreachable server shows its message (which names the
address) and a Retry that repeats the same sign-in. The screen is dismissed with what
``authenticate`` returned once the sign-in succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label

from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.plain_input import PlainInput
from muster_tui.widgets.safe_text import safe
from sync_core.errors import ServerUnreachable, SyncError

log = logging.getLogger(__name__)
SignedIn = TypeVar("SignedIn")
MISSING_CREDENTIALS = "Enter your username and password"
SIGNING_IN = "Signing in..."


class SignInScreen(Screen[SignedIn]):
    """Username and password for the server at ``server_url``.

    ``authenticate(username, password)`` signs in, raising :class:`SyncError` subclasses,
    and returns what the screen is dismissed with; ``username`` pre-fills the form, e.g.
    after a sign-out; ``note`` is shown on the outcome line at first (why the last session
    ended: timed out, registrations still waiting, the retention wipe).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "sign_in", "Sign in"),
        Binding("f5", "retry", "Retry"),
    ]

    def __init__(
        self,
        server_url: str,
        authenticate: Callable[[str, str], Awaitable[SignedIn]],
        username: str = "",
        note: str | None = None,
    ) -> None:
        super().__init__()
        self.note = note
        self.server_url = server_url
        self.authenticate = authenticate
        self.username = username
        self._attempt: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        """Title, server address, the two fields, the outcome line and Retry."""
        with Vertical(id="sign-in-form"):
            yield Label("Muster", classes="screen-title")
            yield Label("Electronic mustering", classes="subtitle")
            yield Label(safe(f"Server: {self.server_url}"), id="server")
            yield Label("Username", classes="field-name")
            yield PlainInput(self.username, id="username")
            yield Label("Password", classes="field-name")
            yield PlainInput(password=True, id="password")
            yield Button("Sign in", id="sign-in", compact=True)
            yield Label(id="outcome")
            yield Button("Retry", id="retry", compact=True)
        yield ModeBar()
        yield Footer()

    def on_mount(self) -> None:
        """Focus the first empty field."""
        field = "#password" if self.username else "#username"
        self.query_one(field, Input).focus()
        if self.note:
            self._show_outcome(self.note)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer Retry only after the server was unreachable."""
        if action == "retry":
            return self.has_class("-unreachable")
        return True

    @on(Input.Submitted, "#username")
    def _next_field(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    @on(Button.Pressed, "#sign-in")
    def action_sign_in(self) -> None:
        """Sign in with what the form holds."""
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not username or not password:
            self._show_outcome(MISSING_CREDENTIALS, problem=True)
            return
        self._attempt = (username, password)
        self._sign_in(username, password)

    @on(Button.Pressed, "#retry")
    def action_retry(self) -> None:
        """Repeat the sign-in that found the server unreachable."""
        if self._attempt is not None:
            self._sign_in(*self._attempt)

    @work(exclusive=True, exit_on_error=False)
    async def _sign_in(self, username: str, password: str) -> None:
        self._show_outcome(SIGNING_IN)
        try:
            signed_in = await self.authenticate(username, password)
        except ServerUnreachable as exc:
            self._show_outcome(str(exc), problem=True, unreachable=True)
        except SyncError as exc:
            self._show_outcome(str(exc), problem=True)
        except Exception as exc:  # noqa: BLE001 - never leave "Signing in..." on screen
            log.exception("sign-in failed unexpectedly")
            self._show_outcome(f"Sign-in failed on the device: {type(exc).__name__}: {exc}", problem=True)
        else:
            self.dismiss(signed_in)

    def _show_outcome(self, message: str, *, problem: bool = False, unreachable: bool = False) -> None:
        outcome = self.query_one("#outcome", Label)
        outcome.update(safe(message))
        outcome.set_class(problem, "-problem")
        self.set_class(unreachable, "-unreachable")
        self.refresh_bindings()
