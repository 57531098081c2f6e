"""Muster's Textual app for crew handhelds and SSH / serial terminals.

Kept free of imports: ``muster --help`` must not pay for Textual. The app lives in
:mod:`muster_tui.app` (``make_app``).
"""
