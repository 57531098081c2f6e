"""Helpers for the dashboard tests: Debian's chromium driven headless by playwright, a page
signed in to the dashboard, and where screenshots are kept (``artifacts/``, not committed).

The Makefile's ``browser-deps`` installs chromium; playwright cannot download its own
browser offline, so it is pointed at ``/usr/bin/chromium``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WIDE = {"width": 1280, "height": 800}
TALL = {"width": 800, "height": 1280}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless chromium, closed on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, url: str, user: str = "office", password: str = "office") -> Page:
    """A new page (own cookies, 1280x800) that signed in through the dashboard's form as
    ``user``; it is wherever the form led (the dashboard for the office)."""
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    await page.goto(f"{url}/dashboard")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return page
