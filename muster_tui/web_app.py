"""``muster app --web``: the handheld app in a tablet's browser, through textual-serve.

textual-serve runs ``muster app --server URL --db FILE`` for each browser that connects and
relays its terminal over a WebSocket to xterm.js. Everything the page loads comes from this
server: textual-serve's wheel ships xterm.js (in ``textual.js``), its CSS and the Roboto
Mono font; only its page linked the font from a CDN, so Muster serves its own copy of that
page (``web_templates/app_index.html``) with the font from the local static files.
It listens on 127.0.0.1 unless told otherwise: the app behind it holds the device store.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

TEMPLATES = Path(__file__).parent / "web_templates"


def serve_in_browser(server_url: str, db_path: Path, host: str, port: int) -> None:
    """Serve the app on ``http://host:port`` until SIGINT / SIGTERM."""
    from textual_serve.server import Server

    command = shlex.join(
        [sys.executable, "-m", "muster_tui", "app", "--server", server_url, "--db", str(db_path.resolve())]
    )
    Server(command, host=host, port=port, title="Muster", templates_path=TEMPLATES).serve()
