"""The Synchronization screen without a server: constructed statuses and a refused network."""

from __future__ import annotations

import asyncio

from textual.widgets import Button, Collapsible, Label, ProgressBar

from muster_tui.app import MusterApp
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.download_panel import ONLINE_ONLY_NOTE
from muster_tui.widgets.utc_time import format_utc
from sync_core.device import UploadStatus
from sync_core.protocol import SyncState
from tests.tui.helpers import (
    SERVER_ID,
    SYNCED_AT,
    after_delta_status,
    failed_status,
    footer_fits,
    in_progress_status,
    offered_actions,
    settle,
    show_status,
    succeeded_status,
    sync_now_in_progress_status,
    upload_status,
)

NARROW = (40, 20)
WIDE = (80, 24)


def action_buttons(screen: SynchronizationScreen) -> list[Button]:
    """The action buttons on show (Sync Now or Retry)."""
    return [button for button in screen.query(".actions Button").results(Button) if button.region.height]


async def test_narrow_screen_shows_the_action_without_horizontal_scrolling(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=NARROW) as pilot:
        for status, label in ((succeeded_status(), "Sync Now"), (failed_status(), "Retry")):
            screen = await show_status(pilot, status)
            (button,) = action_buttons(screen)
            assert str(button.label) == label
            assert 0 < button.region.width and button.region.right <= NARROW[0]
            assert screen.query_one("#sync-body").max_scroll_x == 0
            screen.dismiss()
            await pilot.pause()


async def test_retry_takes_the_place_of_sync_now_after_a_failure(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, succeeded_status())
        assert [button.id for button in action_buttons(screen)] == ["sync-now"]
        assert offered_actions(screen).get("Sync Now") is True
        assert "Retry" not in offered_actions(screen)
        screen.post_message(SynchronizationScreen.StatusChanged(failed_status()))
        await pilot.pause()
        assert [button.id for button in action_buttons(screen)] == ["retry"]
        assert offered_actions(screen).get("Retry") is True
        assert "Sync Now" not in offered_actions(screen)


async def test_sync_now_is_disabled_while_a_sync_runs(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, in_progress_status())
        (button,) = action_buttons(screen)
        assert button.disabled
        assert offered_actions(screen).get("Sync Now") is False


async def test_hostile_error_is_shown_literally(offline_app: MusterApp) -> None:
    hostile = failed_status().model_copy(update={"error": "O'Brien [/x] \x1b]2;pwned\x07"})
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, hostile)
        assert str(screen.query_one("#reason", Label).content) == "Reason: O'Brien [/x] ]2;pwned"


async def test_first_sync_failure_stays_with_retry_and_the_online_note(offline_app: MusterApp) -> None:
    failed = asyncio.Event()  # the run ends in a worker the screen's message starts: wait for it
    offline_app.engine.subscribe(lambda status: failed.set() if status.can_retry else None)
    async with offline_app.run_test(size=WIDE) as pilot:
        await offline_app.push_screen(
            SynchronizationScreen(offline_app.engine, SERVER_ID, first_sign_in=True)
        )
        async with asyncio.timeout(10):
            await failed.wait()
        await settle(pilot)
        screen = offline_app.screen
        assert isinstance(screen, SynchronizationScreen)
        assert offline_app.engine.status.status is SyncState.FAILED
        assert [button.id for button in action_buttons(screen)] == ["retry"]
        assert not screen.query_one(Collapsible).collapsed
        assert str(screen.query_one("#note", Label).content) == ONLINE_ONLY_NOTE
        assert "refused by the test transport" in str(screen.query_one("#reason", Label).content)
        await pilot.press("f9")
        assert not isinstance(offline_app.screen, SynchronizationScreen)


async def test_offline_session_offers_no_sync(offline_app: MusterApp) -> None:
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = SynchronizationScreen(offline_app.engine, None)
        await offline_app.push_screen(screen)
        await pilot.pause()
        assert screen.query_one("#offline-note", Label).region.height
        assert action_buttons(screen) == []
        assert "Sync Now" not in offered_actions(screen)


async def test_a_failed_upload_shows_its_reason_counts_and_retry(offline_app: MusterApp) -> None:
    upload = UploadStatus(
        status=SyncState.FAILED, pending=2, sent=7, failed=1, last_success=SYNCED_AT, error="P1 [b]gone[/b]"
    )
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, succeeded_status().model_copy(update={"upload": upload}))
        assert str(screen.query_one("#pending", Label).content) == "2"
        assert str(screen.query_one("#refused", Label).content) == "1"
        assert str(screen.query_one("#last-upload", Label).content) == format_utc(SYNCED_AT)
        assert str(screen.query_one("#upload-reason", Label).content) == "Reason: P1 [b]gone[/b]"
        assert screen.query_one("#retry-upload", Button).region.height == 1
        assert offered_actions(screen).get("Retry upload") is True
        screen.post_message(SynchronizationScreen.StatusChanged(succeeded_status()))
        await pilot.pause()
        assert screen.query_one("#retry-upload", Button).region.height == 0
        assert "Retry upload" not in offered_actions(screen)


async def test_records_during_a_delta_are_those_held_not_the_changes(offline_app: MusterApp) -> None:
    """A delta applies page by page, so a finished row's records are the live count; only a
    full sync's staged rows are not live yet (that row shows what was fetched)."""
    done = after_delta_status()
    pictures = done.datasets["pictures"].model_copy(update={"status": SyncState.IN_PROGRESS})
    rows = {**done.datasets, "pictures": pictures}
    delta_running = done.model_copy(update={"status": SyncState.IN_PROGRESS, "datasets": rows})
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, delta_running)
        shown = {key: records(screen, key) for key in done.datasets}
        assert shown == {key: row.count for key, row in done.datasets.items()}
        screen.post_message(SynchronizationScreen.StatusChanged(in_progress_status()))
        await pilot.pause()
        assert records(screen, "users") == in_progress_status().datasets["users"].changes


def records(screen: SynchronizationScreen, key: str) -> int:
    """The Records cell of dataset ``key``'s row."""
    return int(str(screen.query_one(f"#dataset-{key} .cell-count", Label).content))


async def test_a_full_sync_shows_the_engines_progress(offline_app: MusterApp) -> None:
    """Records and portraits against the totals, a bar and the time left while a full sync
    runs (the engine's figures, shown as they are); nothing of it once the run ended."""
    running = sync_now_in_progress_status()
    progress = running.progress
    assert progress is not None
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, running)
        figures = str(screen.query_one("#progress-figures", Label).content)
        assert figures == "Records 20 of 2,448 · Portraits 0 of 2,398 · about 42 s left"
        bar = screen.query_one(ProgressBar)
        assert (bar.total, bar.progress) == (2448 + 2398, 20)
        screen.post_message(SynchronizationScreen.StatusChanged(succeeded_status()))
        await pilot.pause()
        assert not screen.query_one("#progress").display


async def test_the_screen_says_when_the_upload_section_is_below(offline_app: MusterApp) -> None:
    """With the details open at 80x24 the upload section is out of sight: a line says so,
    until PageDown brings it into view; with them closed it fits and nothing is said."""
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, succeeded_status())
        note = screen.query_one("#below-note", Label)
        assert not note.display
        await pilot.press("f4")
        await settle(pilot)
        assert note.display and note.region.height == 1
        await pilot.press("pagedown")
        await settle(pilot)
        assert not note.display


async def test_the_footer_fits_40_columns(offline_app: MusterApp) -> None:
    """A failed upload after a sync offers the most keys; at 40 columns the long labels
    give way to short ones, at 80 they are whole."""
    async with offline_app.run_test(size=NARROW) as pilot:
        screen = await show_status(pilot, upload_status("refused"))
        assert footer_fits(screen) == ["Sync", "Upload", "Details", "Menu"]
        await pilot.resize_terminal(*WIDE)
        await settle(pilot)
        assert footer_fits(screen) == ["Sync Now", "Retry upload", "Details", "Menu"]
