"""No personal data in the server's log: tracebacks keep their frames, not their messages.

The server logs ids and counts only (docs/security.md). An unexpected exception is the one
way a value from a request or the store could reach the log: its message may quote a name,
a card number or a search text (a database error repeating a value, say), and uvicorn logs
every unhandled exception with its message. :class:`WithheldMessages` formats a record's
exception as its frames (file, line, function and source line, never local values) and the
exception types of the chain, with every message withheld.
"""

from __future__ import annotations

import logging
import traceback

WITHHELD = "(message withheld: it may quote personal data)"


class WithheldMessages(logging.Filter):
    """A handler filter that replaces a record's exception by :func:`scrubbed` text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record, with its exception scrubbed."""
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrubbed(record.exc_info[1])
            record.exc_info = None
        return True


def scrubbed(exc: BaseException) -> str:
    """``exc`` and its causes / contexts as tracebacks whose messages are withheld."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{type(current).__qualname__}: {WITHHELD}")
        current = current.__cause__ or current.__context__
    return "\n\nwhich happened while handling or because of:\n\n".join(reversed(parts))


def withhold_messages(*loggers: logging.Logger) -> None:
    """Add :class:`WithheldMessages` to every handler of ``loggers`` (the root logger and
    uvicorn's, once configured)."""
    scrub = WithheldMessages()
    for logger in loggers:
        for handler in logger.handlers:
            handler.addFilter(scrub)
