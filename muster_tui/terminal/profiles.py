"""Terminal profiles: what the app may send to the terminal it runs on.

- ``full``: as Textual does on a modern terminal (256 or more colours, portraits, mouse).
- ``ansi16``: the terminal's own 16 colours (an ANSI theme), hence no portraits.
- ``serial``: for serial consoles and slow lines (9,600 baud): ASCII only, no portraits, no
  scrollbars, no animation, 8 colours, a low frame rate, no mouse tracking, and an output
  layer that sends only the cells that changed (:mod:`muster_tui.terminal.diff_driver`).

``auto`` picks one from the environment: ``TERM`` of ``vt100``, ``vt220`` (any ``vt*``)
or ``dumb``, or a line of 19,200 baud or less is ``serial``; ``TERM=linux`` (the Linux
console) or ``NO_COLOR`` is ``ansi16``; anything else is ``full``. See docs/architecture.md, "Terminal
output". This module imports no Textual (``muster --help`` stays cheap).
"""

from __future__ import annotations

import os
import sys
import termios
from collections.abc import Mapping, MutableMapping
from enum import StrEnum

PROFILE_ENV = "MUSTER_PROFILE"
"""Environment variable naming the profile (``auto``, ``full``, ``ansi16``, ``serial``)."""

AUTO = "auto"
WEB_DRIVER_ENV = "TEXTUAL_DRIVER"  # set by textual-serve for each app it runs in a browser
SLOWEST_FAST_LINE = termios.B19200  # this speed or below is a serial line
ANSI_THEME = "ansi-dark"


class Profile(StrEnum):
    """A terminal profile (see the module docstring)."""

    FULL = "full"
    ANSI16 = "ansi16"
    SERIAL = "serial"


PROFILE_NAMES = (AUTO, *(profile.value for profile in Profile))

# Textual reads these at import: set before ``textual`` is first imported.
_TEXTUAL_ENVIRONMENT: dict[Profile, dict[str, str]] = {
    Profile.FULL: {},
    Profile.ANSI16: {"TEXTUAL_COLOR_SYSTEM": "standard"},
    Profile.SERIAL: {
        "TEXTUAL_COLOR_SYSTEM": "standard",
        "TEXTUAL_FPS": "10",  # a frame every 100 ms at most; the output layer coalesces more
        "TEXTUAL_ANIMATIONS": "none",
        "ESCDELAY": "400",  # an escape sequence split across reads is still one key
    },
}


def line_is_slow(fd: int) -> bool:
    """True when ``fd`` is a tty whose output speed is 19,200 baud or less (a pty reports
    38,400; B0, "hang up", counts as unknown)."""
    try:
        speed = termios.tcgetattr(fd)[5]
    except (termios.error, OSError, ValueError):
        return False
    return termios.B0 < speed <= SLOWEST_FAST_LINE


def detect(environ: Mapping[str, str], slow_line: bool) -> Profile:
    """The profile ``auto`` stands for, from ``TERM``, ``NO_COLOR`` and the line speed."""
    term = environ.get("TERM", "").lower()
    if slow_line or term == "dumb" or term.startswith("vt"):
        return Profile.SERIAL
    if term == "linux" or environ.get("NO_COLOR"):
        return Profile.ANSI16
    return Profile.FULL


def choose(requested: str | None, environ: Mapping[str, str], fd: int | None = None) -> Profile:
    """The profile for ``requested`` (a name from :data:`PROFILE_NAMES`; None: the one in
    :data:`PROFILE_ENV`, else ``auto``) on the terminal at ``fd`` (default: stdout); always
    ``full`` in a browser (textual-serve names its driver in ``TEXTUAL_DRIVER``). Raises
    ValueError for an unknown name."""
    name = (requested or environ.get(PROFILE_ENV) or AUTO).strip().lower()
    if environ.get(WEB_DRIVER_ENV):  # the browser is the terminal (muster app --web)
        return Profile.FULL
    if name == AUTO:
        return detect(environ, line_is_slow(sys.stdout.fileno() if fd is None else fd))
    try:
        return Profile(name)
    except ValueError:
        choices = ", ".join(PROFILE_NAMES)
        raise ValueError(f"unknown terminal profile {name!r}: use one of {choices}") from None


def prepare_environment(profile: Profile, environ: MutableMapping[str, str] = os.environ) -> None:
    """Set the Textual settings ``profile`` needs (colour system, frame rate, animations,
    escape delay) unless the environment already sets them. Call before importing Textual."""
    for name, value in _TEXTUAL_ENVIRONMENT[profile].items():
        environ.setdefault(name, value)
