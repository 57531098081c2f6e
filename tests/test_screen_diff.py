"""The serial output layer without Textual: cells, the update between two frames, and the
writer thread coalescing frames while the line is busy."""

from __future__ import annotations

import io
import threading

import pyte

from muster_tui.terminal.diff_driver import DiffWriter
from muster_tui.terminal.screen_diff import BLANK, CLEAR, IntendedScreen, ascii_char, cell, frame_update


def replay(data: str, columns: int = 20, lines: int = 3) -> IntendedScreen:
    screen = IntendedScreen(columns, lines)
    screen.feed(data)
    return screen


def test_cells_are_ascii() -> None:
    texts = ("a", "é", "ñ", "·", "─", "│", "┼", "┴", "╭", "▀", "…", "翔", "")
    expected = ["a", "e", "n", "-", "-", "|", "+", "+", "+", "#", ".", "?", " "]
    assert [ascii_char(text) for text in texts] == expected


def test_cells_keep_8_colours_and_drop_the_rest() -> None:
    screen = replay("\x1b[1;91;44mA\x1b[0;38;5;208;48;2;1;2;3mB\x1b[0;7;30;40mC")
    row = screen.frame()[0]
    assert row[:3] == (("A", "1;31;44"), ("B", ""), ("C", "7;40"))  # black on black: text stays
    assert cell(screen.screen.buffer[1][0]) == BLANK


def test_the_first_update_clears_then_paints_only_text() -> None:
    frame = replay("\x1b[2;5Hhello").frame()
    update = frame_update(None, frame)
    assert update == CLEAR + "\x1b[2;5Hhello"


def test_an_update_sends_only_changed_cells_and_erases_stale_text() -> None:
    screen = replay("\x1b[1;1Hhello world\x1b[2;1Hsecond line")
    before = screen.frame()
    screen.feed("\x1b[1;1Hjello world\x1b[2;1Hsec        ")
    update = frame_update(before, screen.frame(), cursor=(2, 0))
    assert update == "\x1b[1Hj\x1b[2;4H\x1b[K"
    terminal = pyte.Screen(20, 3)
    pyte.Stream(terminal).feed("hello world\r\nsecond line" + update)
    assert terminal.display[:2] == ["jello world".ljust(20), "sec".ljust(20)]


class SlowLine(io.StringIO):
    """A line that holds the first write until released, counting the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        self.release.wait(10)
        return super().write(text)


def test_frames_written_while_the_line_is_busy_go_out_as_one_update() -> None:
    line = SlowLine()
    writer = DiffWriter(line, lambda: (20, 3))
    writer.start()
    writer.write("\x1b[1;1Hframe 0")
    for number in range(1, 50):
        writer.write(f"\x1b[1;1Hframe {number}")
    line.release.set()
    writer.stop()
    assert line.writes <= 3  # the first frame, then one update for the 49 behind it
    terminal = pyte.Screen(20, 3)
    pyte.Stream(terminal).feed(line.getvalue())
    assert terminal.display[0].rstrip() == "frame 49"


def test_control_sequences_pass_in_order_and_sync_brackets_are_dropped() -> None:
    line = io.StringIO()
    writer = DiffWriter(line, lambda: (20, 3))
    writer.start()
    for text in ("\x1b[?1049h", "\x1b[?2026h", "\x1b[1;1Hx", "\x1b[?2026l", "\x1b[?25h"):
        writer.write(text)
    writer.stop()
    assert line.getvalue() == "\x1b[?1049h" + CLEAR + "x\x1b[?25h"
