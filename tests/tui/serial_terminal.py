"""A terminal for pilot tests of the serial profile: Textual paints to it as to a real one.

:func:`serial_driver` makes a driver class (headless input, but not headless for
``App._display``) that hands every write to a :class:`DiffOutput` and sends an update at
once (no coalescing: the most bytes a line could carry). :class:`SerialLine` keeps what
Textual wrote, what the diffing writer sent, and the screen a terminal replaying the sent
bytes shows.
"""

from __future__ import annotations

import io

import pyte
from textual.drivers.headless_driver import HeadlessDriver

from muster_tui.terminal.diff_driver import DiffOutput
from muster_tui.terminal.screen_diff import Frame, cell


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
