"""The serial profile's output layer: a Textual driver that sends only what changed.

:class:`DiffDriver` is Textual's ``LinuxDriver`` with its writer replaced: every frame
Textual writes is replayed on an :class:`~muster_tui.terminal.screen_diff.IntendedScreen`,
and a writer thread sends the terminal the difference between the frame it holds and the
newest frame (:func:`~muster_tui.terminal.screen_diff.frame_update`). While the line is
busy sending one update, the frames Textual writes meanwhile only change the intended
screen, so the next update covers all of them at once: a slow line never queues frame
behind frame. Mouse tracking is off. See docs/architecture.md, "Terminal output".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

from muster_tui.terminal.screen_diff import Frame, IntendedScreen, frame_update

# Mode sets, mode queries, the kitty keyboard protocol, OSC strings and the bell go out as
# they are (in order with the frames); everything else Textual writes is a frame.
_CONTROL = re.compile(r"(?:\x1b\[[?<>][0-9;]*\$?[a-zA-Z]|\x1b\][^\x07]*\x07|\x07)+")
# Synchronized-update brackets (each update is one write already) and pointer shapes.
_DROPPED = re.compile(r"\x1b\[\?2026[hl]|\x1b\]22;[^\x07]*\x07")


class DiffOutput:
    """Textual's output in, differences between frames out to ``file``.

    ``take`` each piece Textual writes (a frame replays on the intended screen; a control
    sequence goes out at once, after the update the frames before it call for); ``send_update``
    writes what changed since the last update. ``size()`` gives the terminal's (columns,
    lines), read at each update: a new size repaints the whole screen. Not thread-safe: the
    :class:`DiffWriter` thread (or a test) is its one user.
    """

    def __init__(self, file: IO[str], size: Callable[[], tuple[int, int]]) -> None:
        self._file = file
        self._size = size
        self.screen = IntendedScreen(*size())
        self._held: Frame | None = None
        self._dirty = False

    def take(self, text: str) -> None:
        """One piece of Textual's output."""
        if _CONTROL.fullmatch(text):
            self.send_update()
            self._file.write(_DROPPED.sub("", text))
        elif text:
            self.screen.feed(text)
            self._dirty = True

    def repaint(self) -> None:
        """Forget what the terminal holds: the next update clears and paints it all."""
        self._held, self._dirty = None, True

    def send_update(self) -> None:
        """Write the difference between the terminal's frame and the intended one."""
        size = self._size()
        if size != self.screen.size:
            self.screen.resize(*size)
            self.repaint()
        if self._dirty:
            self._dirty = False
            frame = self.screen.frame()
            self._file.write(frame_update(self._held, frame))
            self._held = frame
        self._file.flush()


class DiffWriter(threading.Thread):
    """A :class:`DiffOutput` on a thread of its own: ``write`` never blocks, and all that
    arrived while the line was busy goes out as one update. ``stop`` sends what is left
    and waits for the thread."""

    def __init__(self, file: IO[str], size: Callable[[], tuple[int, int]]) -> None:
        super().__init__(daemon=True, name="muster-diff-output")
        self._output = DiffOutput(file, size)
        self._queue: SimpleQueue[str | None] = SimpleQueue()
        self._repaint = threading.Event()

    def write(self, text: str) -> None:
        """Queue ``text`` (a frame or a control sequence) for the thread."""
        self._queue.put(text)

    def repaint(self) -> None:
        """Clear and paint the whole screen at the next update."""
        self._repaint.set()
        self._queue.put("")

    def stop(self) -> None:
        """Send what waits and end the thread."""
        self._queue.put(None)
        self.join()

    def run(self) -> None:
        """Take everything queued, send one update; until stopped."""
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get())
            if self._repaint.is_set():
                self._repaint.clear()
                self._output.repaint()
            for text in batch:
                if text is None:
                    self._output.send_update()
                    return
                self._output.take(text)
            self._output.send_update()


class DiffDriver(LinuxDriver):
    """``LinuxDriver`` writing through a :class:`DiffWriter`, with the mouse off."""

    def __init__(self, app: Any, *, debug: bool = False, mouse: bool = True, size: Any = None) -> None:
        super().__init__(app, debug=debug, mouse=False, size=size)
        self._diff_writer: DiffWriter | None = None

    def start_application_mode(self) -> None:
        """Start (or, after a suspend, repaint) the writer, then Textual's own start."""
        if self._diff_writer is None:
            assert self._file is not None, "no terminal to write to"
            self._diff_writer = DiffWriter(self._file, self._get_terminal_size)
            self._diff_writer.start()
        else:
            self._diff_writer.repaint()
        super().start_application_mode()

    def write(self, data: str) -> None:
        """Hand ``data`` to the diff writer."""
        assert self._diff_writer is not None, "Driver must be in application mode"
        self._diff_writer.write(data)

    def close(self) -> None:
        """Stop Textual's writer and the diff writer."""
        super().close()
        if self._diff_writer is not None:
            self._diff_writer.stop()
            self._diff_writer = None
