"""The serial profile's app for pilot tests, and a terminal Textual paints to as to a real one.

:func:`serial_driver` makes a driver class (headless input, but not headless for
``App._display``) that hands every write to a :class:`DiffOutput` and sends an update at
once (no coalescing: the most bytes a line could carry). :class:`SerialLine` keeps what
Textual wrote, what the diffing writer sent, and the screen a terminal replaying the sent
bytes shows.
"""

from __future__ import annotations

import io

import httpx
import pyte
from textual.drivers.headless_driver import HeadlessDriver

from muster_tui.app import MusterApp, make_app
from muster_tui.terminal.diff_driver import DiffOutput
from muster_tui.terminal.profiles import Profile
from muster_tui.terminal.screen_diff import Frame, cell
from sync_core.clock import FrozenClock
from sync_core.device import DeviceStore
from tests.tui.conftest import offline_monitor
from tests.tui.helpers import SERVER_URL, SYNCED_AT


class SerialLine:
    """What Textual wrote (``raw``), the bytes sent (``sent``) and their replay."""

    def __init__(self, columns: int, lines: int) -> None:
        self.raw: list[str] = []
        self.sent = io.StringIO()
        self.output = DiffOutput(self.sent, lambda: (columns, lines))
        self.replay = pyte.Screen(columns, lines)
        self._replay_stream = pyte.Stream(self.replay)
        self._replayed = 0

    def write(self, text: str) -> None:
        """One write of Textual's, sent through the diffing writer at once."""
        self.raw.append(text)
        self.output.take(text)
        self.output.send_update()

    def sent_bytes(self) -> int:
        """Bytes sent so far."""
        return len(self.sent.getvalue().encode())

    def intended(self) -> Frame:
        """The screen Textual meant, as serial cells."""
        return self.output.screen.frame()

    def terminal(self) -> Frame:
        """The screen of a terminal that received the sent bytes, as serial cells."""
        text = self.sent.getvalue()
        self._replay_stream.feed(text[self._replayed :])
        self._replayed = len(text)
        return [
            tuple(cell(self.replay.buffer[y][x]) for x in range(self.replay.columns))
            for y in range(self.replay.lines)
        ]


def serial_driver(line: SerialLine) -> type[HeadlessDriver]:
    """A driver class writing to ``line``."""

    class SerialLineDriver(HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            return False

        def write(self, data: str) -> None:
            line.write(data)

    return SerialLineDriver


def serial_app(store: DeviceStore, line: SerialLine | None = None, url: str | None = None) -> MusterApp:
    """The app in the serial profile on ``store``, painting to ``line`` (None: headless, as
    snapshot tests run). Without ``url``: offline (the network refuses) on a frozen clock;
    with it, the real server there on the system clock."""
    if url is None:
        clock = FrozenClock(SYNCED_AT)
        refuse = httpx.MockTransport(lambda request: httpx.Response(503))
        app = make_app(
            SERVER_URL,
            store,
            clock=clock,
            transport=refuse,
            monitor=offline_monitor(clock),
            profile=Profile.SERIAL,
        )
    else:
        app = make_app(url, store, profile=Profile.SERIAL)
    if line is not None:
        app.driver_class = serial_driver(line)
    return app
