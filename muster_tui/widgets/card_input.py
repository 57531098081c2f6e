"""The card field: a handheld's barcode or RFID reader types the number and Enter in one burst.

Enter posts :class:`CardInput.Scanned` with the text and the time the Enter key arrived,
and empties the field at once, so the next burst starts clean while this scan is handled.
The field never gives up focus by itself, so no key of a burst lands elsewhere.
"""

from __future__ import annotations

from textual import events
from textual.message import Message

from muster_tui.widgets.plain_input import PlainInput


class CardInput(PlainInput):
    """A compact, non-blinking field for card numbers."""

    class Scanned(Message):
        """A card number was entered: ``text`` as typed, ``at`` the Enter key's time
        (Textual's monotonic clock, :func:`time.monotonic`)."""

        def __init__(self, text: str, at: float) -> None:
            super().__init__()
            self.text = text
            self.at = at

    async def _on_key(self, event: events.Key) -> None:
        if event.key != "enter":
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        text, self.value = self.value, ""
        if text.strip():
            self.post_message(self.Scanned(text, event.time))
