"""A real terminal: the app under tmux at 40x20 with ``TERM=vt100`` (the ``auto`` profile
picks ``serial``) signs in, syncs, registers a card and shows the Synchronization screen,
driven with ``send-keys`` and read with ``capture-pane``; an F-key whose escape sequence
arrives in two reads still counts as that key. tmux is installed by ``make test`` (``browser-deps``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sync_core.server.process import ServerProcess
from tests.registering import onboard_cards

MUSTER = str(Path(sys.executable).parent / "muster")


class Tmux:
    """A tmux server of our own (its socket at ``socket``), one 40x20 session running
    ``command``."""

    def __init__(self, socket: Path, command: list[str]) -> None:
        self.base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MUSTER_", "TEXTUAL", "NO_COLOR", "ESCDELAY"))
        }
        subprocess.run(
            [*self.base, "new-session", "-d", "-x", "40", "-y", "20", "-s", "app", *command],
            check=True,
            env=env,
        )
        # tmux passes keys on at once (its own wait for the rest of an escape sequence off)
        subprocess.run([*self.base, "set", "-s", "escape-time", "0"], check=True)

    def keys(self, *keys: str) -> None:
        """``send-keys`` (tmux key names such as ``Enter`` and ``F5``, or literal text)."""
        subprocess.run([*self.base, "send-keys", "-t", "app", *keys], check=True)

    def split_key(self, sequence: str, gap: float = 0.15) -> None:
        """Send ``sequence`` in two reads, its Esc alone first, ``gap`` seconds apart (a slow
        line splits escape sequences so)."""
        subprocess.run([*self.base, "send-keys", "-t", "app", "-l", sequence[0]], check=True)
        time.sleep(gap)
        subprocess.run([*self.base, "send-keys", "-t", "app", "-l", sequence[1:]], check=True)

    def screen(self, styled: bool = False) -> str:
        """The pane's text (``styled``: with its SGR sequences)."""
        capture = [*self.base, "capture-pane", "-p", "-t", "app", *(["-e"] if styled else [])]
        return subprocess.run(capture, check=True, capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The pane's text once ``text`` shows in it (in any case: footers show ``f5`` or
        ``F5``); fails after ``timeout`` seconds."""
        return self._wait(lambda screen: text.lower() in screen.lower(), text, timeout)

    def wait_for_field(self, label: str, timeout: float = 30.0) -> None:
        """Wait until the field under ``label`` has the focus (it is drawn in colour).

        Keys typed ahead of a focus change reach the field that had the focus, so a test
        types into the next field only once it has it."""

        def focused(screen: str) -> bool:
            rows = screen.splitlines()
            return any(label in row and "\x1b[" in below for row, below in zip(rows, rows[1:], strict=False))

        self._wait(focused, f"focus under {label!r}", timeout, styled=True)

    def _wait(self, done: Callable[[str], bool], what: str, timeout: float, styled: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while not done(screen := self.screen(styled)):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} never showed:\n{screen}")
            time.sleep(0.1)
        return screen

    def kill(self) -> None:
        """Stop this tmux server (and the app in it)."""
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def tmux_app(own_server: ServerProcess, tmp_path: Path) -> Iterator[Tmux]:
    """``muster app`` on a new device store under ``TERM=vt100`` in tmux."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (make browser-deps installs it)")
    app = [MUSTER, "app", "--server", own_server.url, "--db", str(tmp_path / "device.duckdb")]
    tmux = Tmux(tmp_path / "tmux.sock", ["env", "TERM=vt100", *app])
    yield tmux
    tmux.kill()


def test_vt100_at_40x20_signs_in_registers_and_shows_sync(tmux_app: Tmux, ship_dir: Path) -> None:
    assert tmux_app.wait_for("Username").isascii()
    tmux_app.keys("demo", "Enter")
    tmux_app.wait_for_field("Password")
    tmux_app.keys("demo", "Enter")
    assert tmux_app.wait_for("Synchronization").isascii()  # the first sync, over the menu
    assert tmux_app.wait_for("Main menu").isascii()  # once it is done
    tmux_app.keys("F2")
    tmux_app.wait_for("Grand Theater")  # the places, once the set-up found them
    tmux_app.split_key("\x1b[15~")  # F5, split after its Esc: still F5 (a bare Esc goes back)
    screen = tmux_app.wait_for("Missing (")
    found = re.search(r"General assembly - (\w+) ", screen)  # the title, its middle dot in ASCII
    assert found is not None, screen
    station = found.group(1)
    card = onboard_cards(ship_dir, station, 1)[0][0]
    tmux_app.keys(card, "Enter")
    assert tmux_app.wait_for("Registered:").isascii()
    tmux_app.keys("F9")
    tmux_app.wait_for("Safety mode")  # back at the set-up
    tmux_app.keys("F9")
    tmux_app.wait_for("Main menu")
    tmux_app.keys("F3")
    screen = tmux_app.wait_for("Success")  # the last sync's status
    assert screen.isascii()
    assert "Synchronization" in screen.splitlines()[0]
