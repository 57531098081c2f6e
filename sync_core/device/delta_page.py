"""One page of the server's change feed, as the client reads it and the store applies it.

It lives apart from both so the store never depends on the HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_core.device.arrow_rows import ArrowRows


@dataclass(frozen=True)
class DeltaPage:
    """One page of the change feed: the changes in ``(after, cursor]``.

    ``upserts`` holds each changed dataset's rows (wire columns), ``deletes`` its deleted
    ids; ``more`` says whether changes after ``cursor`` exist.
    """

    cursor: int
    more: bool
    upserts: dict[str, ArrowRows]
    deletes: dict[str, list[str]]

    @property
    def changes(self) -> dict[str, int]:
        """Records upserted or deleted per dataset in this page."""
        keys = set(self.upserts) | set(self.deletes)
        return {
            key: (self.upserts[key].num_rows if key in self.upserts else 0) + len(self.deletes.get(key, []))
            for key in keys
        }
