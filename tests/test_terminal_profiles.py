"""Terminal profiles: what ``auto`` picks, names, and the Textual settings each one sets."""

from __future__ import annotations

import os
import termios

import pytest

from muster_tui.terminal.profiles import (
    PROFILE_ENV,
    Profile,
    choose,
    detect,
    line_is_slow,
    prepare_environment,
)


@pytest.mark.parametrize(
    ("environ", "slow", "expected"),
    [
        ({"TERM": "vt100"}, False, Profile.SERIAL),
        ({"TERM": "vt220"}, False, Profile.SERIAL),
        ({"TERM": "dumb"}, False, Profile.SERIAL),
        ({"TERM": "xterm-256color"}, True, Profile.SERIAL),
        ({"TERM": "linux"}, False, Profile.ANSI16),
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, False, Profile.ANSI16),
        ({"TERM": "xterm-256color"}, False, Profile.FULL),
        ({}, False, Profile.FULL),
    ],
)
def test_auto_detects_from_term_no_color_and_line_speed(environ: dict, slow: bool, expected: Profile) -> None:
    assert detect(environ, slow) is expected


def test_the_option_wins_over_the_environment_variable() -> None:
    environ = {PROFILE_ENV: "ansi16", "TERM": "xterm-256color"}
    assert choose("serial", environ) is Profile.SERIAL
    assert choose(None, environ) is Profile.ANSI16
    assert choose(None, {PROFILE_ENV: " Serial "}) is Profile.SERIAL


def test_in_a_browser_the_profile_is_full() -> None:
    web = "textual.drivers.web_driver:WebDriver"
    environ = {PROFILE_ENV: "serial", "TERM": "vt100", "TEXTUAL_DRIVER": web}
    assert choose(None, environ) is Profile.FULL


def test_an_unknown_profile_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown terminal profile 'teletype'.*auto, full, ansi16, serial"):
        choose(None, {PROFILE_ENV: "teletype"})


def test_line_speed_from_the_tty() -> None:
    master, slave = os.openpty()
    try:
        attributes = termios.tcgetattr(slave)
        attributes[4] = attributes[5] = termios.B38400
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        assert not line_is_slow(slave)
        attributes[4] = attributes[5] = termios.B9600
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        assert line_is_slow(slave)
        assert choose("auto", {"TERM": "xterm-256color"}, slave) is Profile.SERIAL
    finally:
        os.close(slave)
        os.close(master)
    assert not line_is_slow(master + 1000)  # not a tty (closed): not slow


def test_serial_settings_leave_what_the_environment_sets() -> None:
    environ = {"TEXTUAL_FPS": "5"}
    prepare_environment(Profile.SERIAL, environ)
    assert environ == {
        "TEXTUAL_FPS": "5",
        "TEXTUAL_COLOR_SYSTEM": "standard",
        "TEXTUAL_ANIMATIONS": "none",
        "ESCDELAY": "400",
    }
    full: dict[str, str] = {}
    prepare_environment(Profile.FULL, full)
    assert full == {}
