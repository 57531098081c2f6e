"""The empty delta poll, answered before the web framework.

Most requests at a muster are handhelds asking every second for the changes after their
cursor, and most find none. Such a poll is answered from memory: the bearer token among the
sessions the server holds in memory, the change feed's bounds kept in memory by the store,
and the encoded empty page of that cursor kept too. It skips FastAPI's middleware,
routing, dependencies and validation, which cost several times what the answer does.

Anything else, or anything this cannot settle from memory (no token, a token not in
memory, a malformed query, a cursor with changes after it or outside the feed's bounds),
goes to the app, which answers it as ever (401, 422, the page, 410).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from sync_core.protocol import API_PREFIX, ARROW_STREAM, CHANGES_PAGE_MAX
from sync_core.server.store import ServerStore
from sync_core.server.tokens import TokenRegistry

CHANGES_PATH = f"{API_PREFIX}/changes"
# Encoded empty pages kept, by cursor: the feed's last few.
EMPTY_PAGES_KEPT = 16
ASGIApp = Callable[..., Any]


class EmptyPolls:
    """ASGI middleware over ``app``: answers ``GET /api/v1/changes?after=N&limit=M`` when N
    is the last change of ``store``'s feed and the bearer token is a live session held in
    ``tokens``' memory, with ``empty_page(N)`` (the encoded page; see the module)."""

    def __init__(
        self, app: ASGIApp, store: ServerStore, tokens: TokenRegistry, empty_page: Callable[[int], bytes]
    ) -> None:
        self.app = app
        self.store = store
        self.tokens = tokens
        self.empty_page = lru_cache(maxsize=EMPTY_PAGES_KEPT)(empty_page)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        page = self._answer(scope) if scope["type"] == "http" and scope["path"] == CHANGES_PATH else None
        if page is None:
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", ARROW_STREAM.encode()), (b"content-length", str(len(page)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": page})

    def _answer(self, scope: dict[str, Any]) -> bytes | None:
        """The empty page to send, or None when the app must answer."""
        after = _cursor(scope)
        if scope["method"] != "GET" or after is None or not self._signed_in(scope):
            return None
        horizon, latest = self.store.feed_bounds()
        return self.empty_page(after) if horizon <= after == latest else None

    def _signed_in(self, scope: dict[str, Any]) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and self.tokens.held(token) is not None
        return False


def _cursor(scope: dict[str, Any]) -> int | None:
    """``after`` of a query ``after=N&limit=M`` (in either order, nothing else: digits only,
    1 <= M <= the page maximum), else None."""
    try:
        pairs = parse_qsl(scope["query_string"].decode("ascii"), strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        return None
    query = dict(pairs)
    if len(pairs) != 2 or query.keys() != {"after", "limit"}:
        return None
    if not all(value.isascii() and value.isdigit() for value in query.values()):
        return None
    return int(query["after"]) if 1 <= int(query["limit"]) <= CHANGES_PAGE_MAX else None
