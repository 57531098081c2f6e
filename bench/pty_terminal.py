"""A program on a pseudo-terminal, seen as a terminal on a serial line would see it.

:class:`PtyTerminal` starts a command with a pty of a given size as its stdin, stdout and
stderr, reads everything it writes (after the tty's output processing: the bytes a line
would carry), replays them through pyte to know the screen, and answers the queries a
terminal answers (device attributes, cursor position, DECRQM mode queries as "not
recognised"), so a program that asks is not left waiting.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence

import pyte

_QUERY = re.compile(rb"\x1b\[(\?[0-9]+\$p|c|0c|6n|\?6n|5n)")


class PtyTerminal:
    """``argv`` running on a ``columns`` x ``lines`` pty with environment ``env``.

    ``received`` counts the bytes the program wrote so far; :meth:`wait_quiet` waits for a
    pause in its output, :meth:`wait_text` for text on the screen. Use as a context manager
    (the program is sent SIGTERM, then SIGKILL, on exit).
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], columns: int, lines: int) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=dict(env), start_new_session=True
        )
        os.close(slave)
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.Stream(self.screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()
        self._tail = b""
        self.received = 0
        self.last_byte = self.started
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def __enter__(self) -> PtyTerminal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received += len(data)
                self.last_byte = time.monotonic()
                self._stream.feed(self._decoder.decode(data))
                self._answer(self._tail + data)
                self._tail = data[-16:]

    def _answer(self, data: bytes) -> None:
        for query in _QUERY.finditer(data):
            if query.end() <= len(self._tail):
                continue  # answered with the chunk before
            asked = query.group(1)
            if asked.endswith(b"$p"):
                self.send(b"\x1b[" + asked[:-2] + b";0$y")
            elif asked.endswith(b"c"):
                self.send(b"\x1b[?1;2c")
            elif asked.endswith(b"5n"):
                self.send(b"\x1b[0n")
            else:
                self.send(f"\x1b[{self.screen.cursor.y + 1};{self.screen.cursor.x + 1}R".encode())

    def send(self, keys: bytes) -> None:
        """Type ``keys`` (as the terminal sends them)."""
        os.write(self.master, keys)

    def text(self) -> str:
        """The screen's text, one line per row."""
        with self._lock:
            return "\n".join(self.screen.display)

    def wait_quiet(self, quiet: float, timeout: float = 60.0) -> float:
        """Wait until the program wrote nothing for ``quiet`` seconds (at least ``quiet``
        from now); returns the time of its last byte. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        time.sleep(quiet)
        while time.monotonic() - self.last_byte < quiet:
            if time.monotonic() > deadline:
                raise TimeoutError(f"output never paused for {quiet} s")
            time.sleep(0.02)
        return self.last_byte

    def wait_text(self, text: str, timeout: float = 30.0) -> float:
        """Wait until ``text`` is on the screen; the monotonic time it was seen. Raises
        TimeoutError."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError(f"{text!r} never showed:\n{self.text()}")
            time.sleep(0.01)
        return time.monotonic()

    def close(self) -> None:
        """Stop the program and close the pty."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        os.close(self.master)
        self._reader.join(5)
