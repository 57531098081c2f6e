"""The status bar on every screen: Online / Offline, and which dependency is down.

It follows ``app.connectivity`` (a :class:`~sync_core.device.connectivity.Connectivity`,
None before the first probe round) and shows e.g. ``Online`` or ``Offline: server down -
connection refused · also down: api, db``. Reasons come from the network and are rendered
as plain text; the bar wraps (a narrow screen shows the whole reason).
"""

from __future__ import annotations

from textual.widgets import Label

from muster_tui.widgets.in_place import show_in_place
from muster_tui.widgets.safe_text import safe
from sync_core.device.connectivity import Connectivity, DependencyState

CHECKING = "Checking the connection..."


def mode_line(connectivity: Connectivity | None) -> str:
    """The bar's text: the mode, and for offline the first dependency down and why, then
    the others down by name."""
    if connectivity is None:
        return CHECKING
    if connectivity.online:
        return "Online"
    down = [
        (name, dependency)
        for name, dependency in connectivity.dependencies.items()
        if dependency.state is not DependencyState.UP
        and not (name == "vpn" and dependency.state is DependencyState.NOT_CONFIGURED)
    ]
    if not down:
        return "Offline"
    name, dependency = down[0]
    others = f" · also down: {', '.join(other for other, _ in down[1:])}" if len(down) > 1 else ""
    return f"Offline: {name} {dependency.state.value} - {dependency.reason or 'no reason given'}{others}"


class ModeBar(Label):
    """Docked at the bottom, above the footer (one line, more when the text wraps); class
    ``-offline`` when offline."""

    def on_mount(self) -> None:
        """Follow the app's connectivity."""
        self.watch(self.app, "connectivity", self._show, init=True)

    def _show(self, connectivity: Connectivity | None) -> None:
        show_in_place(self, safe(mode_line(connectivity)))
        self.set_class(connectivity is not None and not connectivity.online, "-offline")
        self.set_class(connectivity is not None and connectivity.online, "-online")
