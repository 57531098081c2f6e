"""Where the app's log goes while Textual draws the terminal.

A log record written to stderr under a running Textual app lands on the screen, between
the widgets (and on a serial link it cannot be cleared). While the app runs, records go to
a file beside the device store instead: ``FILE.log`` for the store ``FILE.duckdb``, rotated
at ``MAX_BYTES`` with ``BACKUPS`` older files kept (a handheld's storage is small).
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3


def log_path(db_path: Path) -> Path:
    """The app's log file for the device store at ``db_path``."""
    return db_path.with_suffix(".log")


@contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """For the block, the root logger writes to ``path`` (appended, UTF-8, rotated) and
    nowhere else; its handlers are restored after. The level stays what ``muster -v`` set."""
    root = logging.getLogger()
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    kept = root.handlers[:]
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = kept
        handler.close()
