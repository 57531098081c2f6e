"""Frames as a serial terminal shows them, and the bytes that turn one frame into another.

Textual's output is replayed through pyte (:class:`IntendedScreen`) into a frame of ASCII
cells with at most 8 colours; :func:`frame_update` writes the difference between the frame
the terminal holds and that one, as curses and mosh do: cursor moves, the changed cells
(a gap of a few unchanged cells is re-sent rather than jumped), colour changes only where
the pen changes, and erase-to-end-of-line for stale text after a row's new end. See
docs/architecture.md, "Terminal output".
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pyte

Cell = tuple[str, str]
"""One screen cell: an ASCII character and its SGR parameters (``""``: default pen)."""
Row = tuple[Cell, ...]
Frame = list[Row]

BLANK: Cell = (" ", "")
GAP = 3  # unchanged cells re-sent between two changes, rather than a 4+ byte cursor move
COLOURS = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
CLEAR = "\x1b[m\x1b[H\x1b[2J"
_SUBSTITUTES = {
    "·": "-", "•": "*", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
    "→": ">", "←": "<", "▶": ">", "◀": "<", "▲": "^", "▼": "v", "✓": "v", "✔": "v",
    "✗": "x", "✘": "x", "×": "x", "…": ".", "\u00a0": " ", "": " ",
}  # fmt: skip


def ascii_char(text: str) -> str:
    """One ASCII character standing for the cell text ``text`` (pyte keeps combining marks
    with their letter, and ``""`` right of a wide character): accents dropped (``é`` is
    ``e``), box drawing as ``-``, ``|`` and ``+``, blocks as ``#``, anything else ``?``."""
    if len(text) == 1 and " " <= text < "\x7f":
        return text
    if text in _SUBSTITUTES:
        return _SUBSTITUTES[text]
    first = text[0]
    if "\u2500" <= first <= "\u257f":
        name = unicodedata.name(first, "")
        if " AND " in name:  # corners, tees and crossings
            return "+"
        return "-" if "HORIZONTAL" in name else "|" if "VERTICAL" in name else "+"
    if "\u2580" <= first <= "\u259f":
        return "#"
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain[0] if plain and plain[0] >= " " else "?"


def _colour(name: str, base: int) -> str | None:
    """SGR code for pyte colour ``name`` among the 8 ANSI colours at ``base`` (30 or 40);
    bright colours are their base colour, bright black, 256 and true colours the default."""
    if name in ("brightblack", "default"):
        return None
    return next((str(base + at) for at, colour in enumerate(COLOURS) if name.endswith(colour)), None)


@lru_cache(maxsize=4096)
def cell(char: pyte.screens.Char) -> Cell:
    """The serial cell for a pyte character: ASCII, bold / underline / blink / reverse and
    8 colours (italics and strike-through dropped; a foreground equal to the background
    becomes the default so that text never vanishes)."""
    fg, bg = _colour(char.fg, 30), _colour(char.bg, 40)
    if fg is not None and bg is not None and int(fg) + 10 == int(bg):
        fg = None
    flags = (("1", char.bold), ("4", char.underscore), ("5", char.blink), ("7", char.reverse))
    params = [code for code, on in flags if on] + [code for code in (fg, bg) if code]
    return ascii_char(char.data), ";".join(params)


class IntendedScreen:
    """The screen Textual meant: everything it wrote, replayed through pyte.

    ``feed(text)`` takes Textual's frames (cursor moves, SGR, text); ``frame()`` returns the
    screen as :data:`Frame`, converting only the rows pyte marked dirty since the last call.
    """

    def __init__(self, columns: int, lines: int) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.Stream(self.screen)
        self._rows: Frame = [(BLANK,) * columns] * lines

    @property
    def size(self) -> tuple[int, int]:
        """(columns, lines)."""
        return self.screen.columns, self.screen.lines

    def resize(self, columns: int, lines: int) -> None:
        """A new terminal size; every row is converted again."""
        self.screen.resize(lines, columns)
        self._rows = [(BLANK,) * columns] * lines
        self.screen.dirty.update(range(lines))

    def feed(self, text: str) -> None:
        """Replay ``text`` (Textual's output) on the screen."""
        self.stream.feed(text)

    def frame(self) -> Frame:
        """The screen now, one :data:`Row` per line."""
        buffer, columns = self.screen.buffer, self.screen.columns
        for y in self.screen.dirty:
            if y < len(self._rows):
                line = buffer[y]
                self._rows[y] = tuple(cell(line[x]) for x in range(columns))
        self.screen.dirty.clear()
        return list(self._rows)


def _content_end(row: Row) -> int:
    """The index after the last cell of ``row`` that is not a default blank."""
    end = len(row)
    while end and row[end - 1] == BLANK:
        end -= 1
    return end


class _Pen:
    """The output of one update: the terminal's cursor and pen as the bytes leave it."""

    def __init__(self, cursor: tuple[int, int] | None) -> None:
        self.out: list[str] = []
        self.cursor = cursor
        self.sgr = ""

    def move(self, y: int, x: int) -> None:
        """Put the cursor at row ``y``, column ``x`` (0-based)."""
        if self.cursor == (y, x):
            return
        if self.cursor is not None and self.cursor[0] == y and x > self.cursor[1]:
            self.out.append(f"\x1b[{x - self.cursor[1]}C")
        else:
            self.out.append(f"\x1b[{y + 1}H" if x == 0 else f"\x1b[{y + 1};{x + 1}H")
        self.cursor = (y, x)

    def pen(self, sgr: str) -> None:
        """Set the pen's SGR parameters (``""``: default)."""
        if sgr != self.sgr:
            self.out.append(f"\x1b[0;{sgr}m" if sgr else "\x1b[m")
            self.sgr = sgr

    def put(self, y: int, x: int, cell: Cell) -> None:
        """Write ``cell`` at the cursor (which is at ``y``, ``x``)."""
        self.pen(cell[1])
        self.out.append(cell[0])
        self.cursor = (y, x + 1)


def frame_update(held: Frame | None, target: Frame, cursor: tuple[int, int] | None = None) -> str:
    """The bytes that turn the terminal's ``held`` frame (None: unknown, cleared first) into
    ``target`` (same size). ``cursor`` is where the terminal's cursor is (None: unknown).
    The pen is left at the default."""
    pen = _Pen(cursor)
    if held is None:
        pen.out.append(CLEAR)
        pen.cursor = (0, 0)
        held = [(BLANK,) * len(row) for row in target]
    for y, (new, old) in enumerate(zip(target, held, strict=True)):
        if new != old:
            _row_update(pen, y, new, old)
    pen.pen("")
    return "".join(pen.out)


def _row_update(pen: _Pen, y: int, new: Row, old: Row) -> None:
    end, old_end = _content_end(new), _content_end(old)
    for x in range(end):
        if new[x] == old[x]:
            continue
        at = pen.cursor
        if at is not None and at[0] == y and at[1] <= x and x - at[1] <= GAP:
            for gap in range(at[1], x):  # re-send a short run of unchanged cells
                pen.put(y, gap, new[gap])
        else:
            pen.move(y, x)
        pen.put(y, x, new[x])
    if old_end > end:
        pen.move(y, end)
        pen.pen("")
        pen.out.append("\x1b[K")
