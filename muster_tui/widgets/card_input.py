"""The card field: a handheld's barcode or RFID reader types the number and Enter in one burst.

Enter posts :class:`CardInput.Scanned` with the text and the time the Enter key arrived.
The number it sent is then spent: the next key or paste replaces it, so the next burst
starts clean while this scan is handled, and :meth:`CardInput.clear_spent` empties the
field once the result is on screen. Emptying it at the Enter key itself would redraw the
screen (the field's width changes: a layout pass) while the scan is handled, and Textual
draws at most one frame every 1/60 s, so the result would wait for the next frame.
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

    _spent = False  # the text shown was scanned already

    def clear_spent(self) -> None:
        """Empty the field if it still shows a number that was scanned."""
        if self._spent:
            self._spent = False
            self.value = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key != "enter":
            self.clear_spent()
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        text = "" if self._spent else self.value
        if text.strip():
            self._spent = True
            self.post_message(self.Scanned(text, event.time))
        else:
            self._spent = False
            self.value = ""

    def _on_paste(self, event: events.Paste) -> None:
        self.clear_spent()
        super()._on_paste(event)
