"""``python -m muster_tui`` runs the ``muster`` command line."""

from muster_tui.cli import main

main()
