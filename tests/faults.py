"""Fault injection into the real server's answers: an httpx transport that wraps the real
one and lets a test replace a body, or break it off (the only mock the suite uses)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

Rewrite = Callable[[httpx.Request, bytes], "tuple[bytes | BrokenOff, str] | None"]


class BrokenOff(httpx.AsyncByteStream):
    """A body that sends its first ``at`` bytes, then fails as a dropped connection does."""

    def __init__(self, body: bytes, at: int) -> None:
        self.body = body
        self.at = at

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body[: self.at]
        raise httpx.ReadError("the connection dropped mid-answer")


class FaultyTransport(httpx.AsyncBaseTransport):
    """Passes requests to the real server and lets ``rewrite`` replace an answer's body."""

    def __init__(self, rewrite: Rewrite) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        body = await response.aread()
        replaced = self.rewrite(request, body)
        if replaced is None:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        content, media_type = replaced
        headers = {"content-type": media_type}
        if isinstance(content, BrokenOff):
            return httpx.Response(response.status_code, headers=headers, stream=content)
        return httpx.Response(response.status_code, headers=headers, content=content)

    async def aclose(self) -> None:
        await self.real.aclose()
