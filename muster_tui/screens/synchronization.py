"""The Synchronization screen (seed, "3 Synchronization").

It subscribes to the engine and renders whatever :class:`SyncStatus` it is given, through
:class:`SynchronizationScreen.StatusChanged` messages (tests post constructed statuses the
same way). Sync Now / Retry post :class:`SynchronizationScreen.SyncRequested`; the app runs
the sync, so leaving the screen never cancels one. Retry upload (after a failed upload)
posts :class:`SynchronizationScreen.UploadRetryRequested`. Opened right after a first sign-in it
asks for the full sync by itself and closes on Success; on Failure it stays, and the crew
member continues to the menu with F9 / Esc. When the upload section ends below the visible
part (the details open on a small screen), a line under the body says so; PageDown /
PageUp scroll the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Collapsible, Footer, Label

from muster_tui.widgets.download_panel import DownloadPanel
from muster_tui.widgets.mode_bar import ModeBar
from muster_tui.widgets.narrow_keys import SUFFIX, label_fits, narrow_twin
from muster_tui.widgets.upload_panel import UploadPanel
from sync_core.device import SyncEngine, SyncStatus
from sync_core.protocol import SyncState

OFFLINE_SESSION_NOTE = "Signed in offline: sign in while online to synchronize."
BELOW_NOTE = "More below: Synchronize offline data to server (PageDown)"


class SynchronizationScreen(Screen[None]):
    """Synchronization status for the server ``server_id`` (None: an offline session).

    ``first_sign_in`` starts a full sync on mount, with the per-dataset details open, and
    closes the screen when it succeeds.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "sync_now", "Sync Now"),
        narrow_twin("f5", "sync_now", "Sync"),
        Binding("f5", "retry", "Retry"),
        Binding("f6", "retry_upload", "Retry upload"),
        narrow_twin("f6", "retry_upload", "Upload"),
        Binding("f4", "toggle_details", "Details"),
        Binding("f9", "back", "Menu"),
        Binding("escape", "back", "Menu", show=False),
        Binding("pagedown", "scroll_body(1)", "Down", show=False),
        Binding("pageup", "scroll_body(-1)", "Up", show=False),
    ]

    status: reactive[SyncStatus] = reactive(SyncStatus)

    class StatusChanged(Message):
        """A new :class:`SyncStatus` to show."""

        bubble = False

        def __init__(self, status: SyncStatus) -> None:
            super().__init__()
            self.status = status

    class SyncRequested(Message):
        """Run a full sync with the server ``server_id``."""

        def __init__(self, server_id: str) -> None:
            super().__init__()
            self.server_id = server_id

    class UploadRetryRequested(Message):
        """Put the registrations the server refused back in the queue and upload."""

    def __init__(self, engine: SyncEngine, server_id: str | None, *, first_sign_in: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.server_id = server_id
        self.first_sign_in = first_sign_in
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        """Title, the two sections and the footer."""
        yield Label("Synchronization", classes="screen-title")
        with VerticalScroll(id="sync-body"):
            if self.server_id is None:
                yield Label(OFFLINE_SESSION_NOTE, id="offline-note")
            yield DownloadPanel(details_open=self.first_sign_in).data_bind(SynchronizationScreen.status)
            yield UploadPanel().data_bind(SynchronizationScreen.status)
        yield Label(BELOW_NOTE, id="below-note")
        yield ModeBar()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Follow the engine; on a first sign-in, start the full sync."""
        self.status = self.engine.status
        self._unsubscribe = self.engine.subscribe(self._engine_published)
        self.set_class(self.server_id is None, "-offline-session")
        body = self.query_one("#sync-body", VerticalScroll)
        self.watch(body, "scroll_y", lambda _: self._note_what_is_below(), init=False)
        if self.first_sign_in:
            self._request_sync()

    def on_resize(self) -> None:
        """The visible part changed: say again whether the upload section is below it, and
        offer the footer labels that fit."""
        self.call_after_refresh(self._note_what_is_below)
        self.refresh_bindings()

    def on_collapsible_expanded(self) -> None:
        """The details opened: the upload section may have gone below the visible part."""
        self.call_after_refresh(self._note_what_is_below)

    on_collapsible_collapsed = on_collapsible_expanded

    def _note_what_is_below(self) -> None:
        """Show :data:`BELOW_NOTE` while the upload section ends below the visible part
        (nothing when the screen is closing: a refresh may call this after its widgets went)."""
        try:
            body = self.query_one("#sync-body", VerticalScroll)
            upload = self.query_one(UploadPanel)
            note = self.query_one("#below-note", Label)
        except NoMatches:
            return
        note.display = upload.virtual_region.bottom > body.scroll_y + body.scrollable_content_region.height

    def action_scroll_body(self, pages: int) -> None:
        """Scroll the body ``pages`` pages down (negative: up)."""
        body = self.query_one("#sync-body", VerticalScroll)
        body.scroll_to(y=body.scroll_y + pages * body.scrollable_content_region.height, animate=False)

    def session_online(self, server_id: str) -> None:
        """The offline session this screen opened in is now signed in with ``server_id``:
        drop the offline note and offer the sync actions."""
        self.server_id = server_id
        self.query("#offline-note").remove()
        self.set_class(False, "-offline-session")
        self.refresh_bindings()

    def _engine_published(self, status: SyncStatus) -> None:
        self.post_message(self.StatusChanged(status))

    def on_unmount(self) -> None:
        """Stop following the engine."""
        if self._unsubscribe is not None:
            self._unsubscribe()

    def on_synchronization_screen_status_changed(self, message: StatusChanged) -> None:
        """Show the status the message carries; a first sign-in's success closes the screen."""
        self.status = message.status
        if self.first_sign_in and message.status.status is SyncState.SUCCESS:
            self.first_sign_in = False
            self.dismiss()

    def watch_status(self, old: SyncStatus, new: SyncStatus) -> None:
        """Refresh the footer when the offered action changes (not on every status: the
        footer rebuilds itself on each refresh); say again what is below."""
        offers = (old.running, old.can_retry, old.upload.status, old.upload.failed > 0)
        if offers != (new.running, new.can_retry, new.upload.status, new.upload.failed > 0):
            self.refresh_bindings()
        self.call_after_refresh(self._note_what_is_below)  # the sections' heights may have moved

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Sync Now after a success (dimmed while running), Retry after a failure; Retry
        upload after a failed upload; the labels that fit the width."""
        if not label_fits(self, action, {"sync_now", "retry_upload"}):
            return False
        action = action.removesuffix(SUFFIX)
        if action == "retry_upload":
            upload = self.status.upload
            return self.server_id is not None and (upload.status is SyncState.FAILED or upload.failed > 0)
        if action not in ("sync_now", "retry"):
            return True
        if self.server_id is None or (action == "retry") != self.status.can_retry:
            return False
        return None if self.status.running else True

    @on(Button.Pressed, "#sync-now")
    def action_sync_now(self) -> None:
        """Start a full sync."""
        self._request_sync()

    def action_sync_now_narrow(self) -> None:
        """F5 under its short label: :meth:`action_sync_now`."""
        self.action_sync_now()

    @on(Button.Pressed, "#retry")
    def action_retry(self) -> None:
        """Run the failed full sync again."""
        self._request_sync()

    @on(Button.Pressed, "#retry-upload")
    def action_retry_upload(self) -> None:
        """Ask the app to upload the refused and waiting registrations again."""
        self.post_message(self.UploadRetryRequested())

    def action_retry_upload_narrow(self) -> None:
        """F6 under its short label: :meth:`action_retry_upload`."""
        self.action_retry_upload()

    def action_toggle_details(self) -> None:
        """Expand or collapse the per-dataset details."""
        details = self.query_one(Collapsible)
        details.collapsed = not details.collapsed

    def action_back(self) -> None:
        """Back to the main menu."""
        self.dismiss()

    def _request_sync(self) -> None:
        if self.server_id is not None and not self.status.running:
            self.post_message(self.SyncRequested(self.server_id))
