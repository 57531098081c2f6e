"""A profile's portrait drawn with half blocks, or a plain text stand-in.

Each cell shows two pixels: ``▀`` in the upper pixel's colour on the lower pixel's
background. Drawn here with Pillow rather than with ``textual-image``, whose import writes
terminal queries (``ESC [ c`` and a kitty graphics query) to a tty and reads stdin for the
answers, and whose renderers ask the terminal for its cell size in pixels while drawing:
on a serial link a late answer would land in the card field as typed keys.

The stand-in (:data:`NO_PICTURE`) is shown when the profile has no portrait, when the
bytes do not decode (logged), under ``NO_COLOR``, and on terminals with fewer than 256
colours, where a portrait would be a blur of 16 colours.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.app import RenderResult as WidgetRender
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from sync_core.device import DeviceStore

log = logging.getLogger(__name__)
NO_PICTURE = "no picture"
# Decoded portraits are cut down to this many pixels a side at most (JPEG draft mode makes
# the decode itself cheaper): a portrait is at most a dozen cells wide.
DECODE_SIDE = 32

PictureSource = Callable[[str], bytes | None]
"""Looks a portrait's JPEG up by its SHA-256 (blocking: call it in a worker thread)."""


def stored_pictures(store: DeviceStore) -> PictureSource:
    """Portraits from the device store (None when it has no such row; opened with the data key)."""
    return store.portrait


def decode_portrait(jpeg: bytes) -> Image.Image | None:
    """``jpeg`` as a small RGB image, or None (logged) when it does not decode."""
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            image.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
            small = image.convert("RGB")
        small.thumbnail((DECODE_SIDE, DECODE_SIDE))
        return small
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.warning("portrait does not decode: %s", exc)
        return None


def can_show_pictures(app: App[Any]) -> bool:
    """True when ``app``'s terminal can show a portrait: colour allowed, 256 colours or more."""
    return not app.no_color and app.console.color_system in ("256", "truecolor")


class HalfBlocks:
    """A Rich renderable: ``image`` scaled to fill the width and height it is given, two
    pixels a cell (upper pixel as foreground of ``▀``, lower as background)."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """One line of half blocks per two pixel rows."""
        width, height = options.max_width, options.height or options.max_height
        scaled = self.image.resize((width, height * 2), Image.Resampling.BILINEAR)
        rgb = scaled.tobytes()
        colours = [Color.from_rgb(*rgb[at : at + 3]) for at in range(0, len(rgb), 3)]
        for top in range(0, len(colours), 2 * width):
            uppers, lowers = colours[top : top + width], colours[top + width : top + 2 * width]
            for upper, lower in zip(uppers, lowers, strict=True):
                yield Segment("▀", Style(color=upper, bgcolor=lower))
            yield Segment.line()


class Portrait(Widget):
    """Shows ``image`` as half blocks, or :data:`NO_PICTURE` when it is None."""

    DEFAULT_CSS = """
    Portrait {
        width: 12;
        height: 6;
        background: $panel;
        color: $text-muted;
        content-align: center middle;
    }
    """

    image: reactive[Image.Image | None] = reactive(None)

    def render(self) -> WidgetRender:
        """The half blocks, or the stand-in text."""
        if self.image is None:
            return Content(NO_PICTURE)
        return HalfBlocks(self.image)
