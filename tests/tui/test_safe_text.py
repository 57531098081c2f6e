"""Hostile text is shown literally and without control characters; times say their zone;
counts are in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from textual.app import App, ComposeResult
from textual.widgets import Label

from muster_tui.widgets.person_card import standing_text
from muster_tui.widgets.safe_text import safe, strip_controls
from muster_tui.widgets.utc_time import NEVER, format_utc
from sync_core.muster import Standing
from sync_core.wording import counted

MARKUP_NAME = "O'Brien [/x]"
TITLE_ESCAPE = "\x1b]2;pwned\x07"


def test_markup_is_kept_as_text() -> None:
    assert safe(MARKUP_NAME).plain == MARKUP_NAME
    assert safe(MARKUP_NAME).spans == []


def test_terminal_escape_is_stripped() -> None:
    assert strip_controls(TITLE_ESCAPE) == "]2;pwned"
    assert strip_controls("a\x9bb\x00c\x7f") == "abc"


def test_bidi_overrides_are_stripped_but_joiners_stay() -> None:
    assert strip_controls("Anna\u202egnissim\u2066x\u2069") == "Annagnissimx"
    assert strip_controls("\u0915\u094d\u200d\u0937") == "\u0915\u094d\u200d\u0937"


def test_line_breaks_and_tabs_become_spaces() -> None:
    assert strip_controls("one\ntwo\tthree\r") == "one two three "


async def test_hostile_name_renders_in_a_label() -> None:
    class Show(App[None]):
        def compose(self) -> ComposeResult:
            yield Label(safe(MARKUP_NAME + TITLE_ESCAPE))

    async with Show().run_test() as pilot:
        await pilot.pause()
        assert str(pilot.app.query_one(Label).content) == "O'Brien [/x]]2;pwned"


def test_times_are_shown_in_utc_to_the_minute() -> None:
    cet = timezone(timedelta(hours=1))
    assert format_utc(datetime(2026, 12, 1, 0, 16, 59, tzinfo=cet)) == "2026-11-30 23:16 UTC"
    assert format_utc(datetime(2026, 11, 30, 23, 16, tzinfo=UTC)) == "2026-11-30 23:16 UTC"
    assert format_utc(None) == NEVER


def test_registration_times_carry_the_capturing_device_offset() -> None:
    """The standing's time is the capturing device's, so it says which zone it is in."""
    assert standing_text(Standing("A", "2026-12-01T00:16:59+01:00", "demo", "r1"), "A") == (
        "Registered here at 00:16 UTC+01:00"
    )
    assert standing_text(Standing("B", "2026-11-30T23:16:00+00:00", "demo", "r2"), "A") == (
        "Registered at B at 23:16 UTC"
    )


def test_counts_in_words() -> None:
    assert (counted(1, "registration"), counted(0, "portrait"), counted(3, "portrait")) == (
        "1 registration",
        "0 portraits",
        "3 portraits",
    )
