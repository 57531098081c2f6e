"""The server's log holds no personal data: an exception's message (which may quote a
name or a card number) is withheld, its frames and types are kept."""

from __future__ import annotations

import io
import logging

from sync_core.server.log_scrub import WITHHELD, withhold_messages

NAME, CARD = "Jane O'Brien", "47110815"


def _convert(name: str, card: str) -> None:
    try:
        {}[card]
    except KeyError as exc:
        raise ValueError(f"Could not convert {name!r} to INT32") from exc


def test_a_logged_exception_keeps_its_frames_and_withholds_its_messages() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test_server_log")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))
    withhold_messages(logger)
    try:
        _convert(NAME, CARD)
    except ValueError:
        logger.exception("Exception in ASGI application")
    text = stream.getvalue()
    assert text.startswith("Exception in ASGI application\nTraceback")
    assert f"KeyError: {WITHHELD}" in text and f"ValueError: {WITHHELD}" in text
    assert "in _convert" in text  # the frames stay
    assert NAME not in text and CARD not in text
