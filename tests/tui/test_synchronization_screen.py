"""The Synchronization screen without a server: constructed statuses and a refused network."""

from __future__ import annotations

from textual.widgets import Button, Collapsible, Label

from muster_tui.app import MusterApp
from muster_tui.screens.synchronization import SynchronizationScreen
from muster_tui.widgets.download_panel import ONLINE_ONLY_NOTE
from muster_tui.widgets.utc_time import format_utc
from sync_core.device import UploadStatus
from sync_core.device.status import Refusal
from sync_core.protocol import SyncState
from tests.tui.helpers import (
    SERVER_ID,
    SYNCED_AT,
    after_delta_status,
    failed_status,
    in_progress_status,
    offered_actions,
    settle,
    show_status,
    succeeded_status,
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
    async with offline_app.run_test(size=WIDE) as pilot:
        await offline_app.push_screen(
            SynchronizationScreen(offline_app.engine, SERVER_ID, first_sign_in=True)
        )
        await settle(pilot)
        screen = offline_app.screen
        assert isinstance(screen, SynchronizationScreen)
        assert offline_app.engine.status.status is SyncState.FAILED
        assert [button.id for button in action_buttons(screen)] == ["retry"]
        assert not screen.query_one(Collapsible).collapsed
        assert str(screen.query_one("#note", Label).content) == ONLINE_ONLY_NOTE
        reason = str(screen.query_one("#reason", Label).content)  # offline: it fails at once, saying why
        assert reason.startswith("Reason: The device is offline (network down:")
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


async def test_refused_registrations_are_listed_with_the_reasons_and_retry(offline_app: MusterApp) -> None:
    """Refused in an earlier upload (this one succeeded): still listed, Retry still offered."""
    refusal = Refusal(registration_id="r1", profile_id="P7", reason="no reservation [b]P7[/b]\x1b[2J")
    upload = UploadStatus(status=SyncState.SUCCESS, sent=7, failed=1, refused=[refusal])
    async with offline_app.run_test(size=WIDE) as pilot:
        screen = await show_status(pilot, succeeded_status().model_copy(update={"upload": upload}))
        assert str(screen.query_one("#refusals", Label).content) == "Refused P7: no reservation [b]P7[/b][2J"
        assert offered_actions(screen).get("Retry upload") is True
        screen.post_message(SynchronizationScreen.StatusChanged(succeeded_status()))
        await pilot.pause()
        assert not screen.query_one("#refusals", Label).display


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
