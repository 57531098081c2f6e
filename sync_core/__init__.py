"""Muster's sync core: the wire contract, the device side and the reference server.

No UI code lives here, and nothing here imports ``textual``, ``rich`` or ``muster_tui``
(docs/architecture.md, 'Who may import whom'). Submodules are imported lazily by
their users so that ``muster --help`` stays cheap.
"""
