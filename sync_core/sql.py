"""What the shared SQL needs of a database cursor, whichever engine runs it.

The muster queries (:mod:`sync_core.muster`), the migrations and the server's feed, edits
and registrations run on DuckDB (device and server) and on PostgreSQL (server). Their SQL
is written once, in the dialect both accept, with ``$1``-style parameters (DuckDB's
and PostgreSQL's own; psycopg's ``RawCursor`` passes them through).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    """A DB-API-like cursor: ``execute(sql, params)`` returns something with ``fetchall()``.

    DuckDB's connection cursors and psycopg's ``RawCursor`` both fit.
    """

    def execute(self, sql: Any, parameters: Any = ..., /) -> Any: ...


class Connectable(Protocol):
    """A store handing out a cursor of its own for one unit of work."""

    def cursor(self) -> AbstractContextManager[Any]: ...
