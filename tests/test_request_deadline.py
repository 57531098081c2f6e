"""A server that trickles its answer still ends the request in bounded time
(docs/architecture.md, 'Every request has a timeout')."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sync_core.device import client as client_module
from sync_core.device.client import ServerClient
from sync_core.errors import ServerUnreachable


@pytest.fixture
async def trickling_server() -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that sends one header byte every 0.2 s, forever."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 10_000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


async def test_a_trickling_answer_hits_the_request_deadline(
    trickling_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REQUEST_DEADLINE", 1.0)
    async with ServerClient(trickling_server) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServerUnreachable, match="no complete answer within 1 s"):
            await client.health()
        assert asyncio.get_running_loop().time() - started < 3
