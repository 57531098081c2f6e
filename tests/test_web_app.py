"""``muster app --web``: the handheld app in a browser (real chromium) through textual-serve,
every request answered by the local server (no CDN), listening on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from sync_core.server.process import ServerProcess
from tests.browser import ARTIFACTS, TALL, chromium
from tests.cli import closed_port_url


@pytest.fixture
def web_app(live_server: ServerProcess, tmp_path: Path) -> Iterator[str]:
    """``muster app --web`` on a free port, stopped after the test; its URL."""
    port = int(closed_port_url().rsplit(":", 1)[1])
    args = ["app", "--web", "--port", str(port), "--server", live_server.url]
    args += ["--db", str(tmp_path / "device.duckdb")]
    child = subprocess.Popen([sys.executable, "-m", "muster_tui", *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert child.poll() is None and time.monotonic() < deadline, "muster app --web did not listen"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=15)


async def test_the_app_runs_in_a_browser_from_local_files_only(web_app: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport=TALL)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(web_app)
        await expect(page.locator("body")).to_have_class("-loaded -first-byte", timeout=20_000)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "web-app-800x1280.png")
    assert requested and all(url.startswith(web_app + "/") for url in requested), requested
    assert any(url.endswith(".ttf") for url in requested)
