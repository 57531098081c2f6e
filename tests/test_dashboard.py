"""The bridge's dashboard in a real headless chromium against the real server on 127.0.0.1:
office users see the counts and a registration within 2 s, everyone else is refused, the
missing list can be searched, the safety mode can be started from it (not by crew), and
its forms refuse a request without the session's CSRF token. Screenshots at 1280x800 and
800x1280 are kept in ``artifacts/``. Open dashboards share one read while nothing changes."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from playwright.async_api import Page, expect

from sync_core.protocol import SafetyMode
from sync_core.server.process import ServerProcess
from sync_core.server.web.dashboard import Muster, MusterCache
from tests.browser import ARTIFACTS, TALL, chromium, signed_in
from tests.cli import muster_register, muster_sync, two_people
from tests.conftest import start_server

LIVE_WITHIN_MS = 2000


@pytest.fixture(scope="module")
def server(ship_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own (its tests register people and change the mode)."""
    server = start_server(ship_dir, tmp_path_factory.mktemp("dashboard"))
    yield server
    server.stop()


def assigned_by_station(ship_dir: Path) -> dict[str, int]:
    """People on board per muster station, read from the ship's Parquet file."""
    rows = duckdb.sql(
        f"SELECT muster_station, count(*) FROM '{ship_dir}/reservations.parquet' "
        "WHERE movement_status = 'Onboard' AND muster_station IS NOT NULL GROUP BY 1"
    ).fetchall()
    return dict(rows)


def missing_person(ship_dir: Path) -> tuple[str, str, str, str]:
    """(card, last name, cabin, station) of an on-board person nobody in these tests registers."""
    [row] = duckdb.sql(
        f"SELECT board_card_number, last_name, cabin, muster_station FROM '{ship_dir}/reservations.parquet' "
        "WHERE movement_status = 'Onboard' AND muster_station IS NOT NULL AND cabin IS NOT NULL "
        "ORDER BY profile_id DESC LIMIT 1"
    ).fetchall()
    return row


def needing_help(ship_dir: Path) -> tuple[str, str]:
    """(card, last name) of an on-board person with special needs."""
    [row] = duckdb.sql(
        f"SELECT board_card_number, last_name FROM '{ship_dir}/reservations.parquet' "
        "WHERE movement_status = 'Onboard' AND muster_station IS NOT NULL AND special_needs IS NOT NULL "
        "ORDER BY profile_id DESC LIMIT 1"
    ).fetchall()
    return row


def cell(page: Page, station: str, column: str):  # noqa: ANN201 - a playwright Locator
    return page.locator(f'#stations tr[data-station="{station}"] td.{column}')


async def test_office_sees_counts_and_a_registration_within_2_s(
    server: ServerProcess, ship_dir: Path, tmp_path: Path
) -> None:
    assigned = assigned_by_station(ship_dir)
    (card, profile_id, station), (other_card, other_id, other_station) = two_people(ship_dir)
    async with chromium() as browser:
        page = await signed_in(browser, server.url)
        await page.select_option("select[name=mode]", "GENASS")
        for code, count in assigned.items():
            await expect(cell(page, code, "assigned")).to_have_text(str(count))
        await expect(page.locator("#ship-total")).to_contain_text(f"of {sum(assigned.values())} on board")
        before = await tallies(page)
        db = tmp_path / "device.duckdb"
        assert (await asyncio.to_thread(muster_sync, server.url, db))[0] == 0
        code, report = await asyncio.to_thread(muster_register, server.url, db, card, station)
        assert (code, report["result"], report["pending_upload"]) == (0, "registered", 0)
        registered = str(before[station]["registered"] + 1)
        await expect(cell(page, station, "registered")).to_have_text(registered, timeout=LIVE_WITHIN_MS)
        await expect(page.locator("#handhelds")).to_contain_text("demo")

        # Someone from another station registered here: apart, and every row still adds up.
        assert (await asyncio.to_thread(muster_register, server.url, db, other_card, station, "--force"))[
            0
        ] == 0
        visitors = str(before[station]["visitors"] + 1)
        await expect(cell(page, station, "visitors")).to_have_text(visitors, timeout=LIVE_WITHIN_MS)
        after = await tallies(page)
        assert after[other_station]["elsewhere"] == before[other_station]["elsewhere"] + 1
        for row in after.values():
            assert row["registered"] + row["elsewhere"] + row["not-yet"] == row["assigned"]

        async with page.expect_download() as download:
            await page.click("#report-csv")
        rows = list(csv.DictReader(io.StringIO((await (await download.value).path()).read_text("utf-8-sig"))))
        statuses = {row["profile_id"]: row["status"] for row in rows}
        assert (statuses[profile_id], statuses[other_id]) == ("registered", "registered elsewhere")

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "dashboard-1280x800.png")
        await page.set_viewport_size(TALL)
        await page.screenshot(path=ARTIFACTS / "dashboard-800x1280.png")


async def tallies(page: Page) -> dict[str, dict[str, int]]:
    """Each station row's numbers by column class."""
    found = {}
    for row in await page.locator("#stations tbody tr").all():
        code = await row.get_attribute("data-station")
        numbers = {}
        for column in ("registered", "elsewhere", "not-yet", "assigned", "visitors"):
            numbers[column] = int(await row.locator(f"td.{column}").inner_text())
        found[str(code)] = numbers
    return found


async def test_crew_and_signed_out_visitors_are_refused(server: ServerProcess) -> None:
    async with chromium() as browser:
        visitor = await browser.new_page()
        for path in ("/dashboard", "/dashboard/live", "/dashboard/report?mode=EMERCY&format=csv"):
            await visitor.goto(server.url + path)
            await expect(visitor.locator("form input[name=password]")).to_be_visible()
            await expect(visitor.locator("#stations")).to_have_count(0)
        crew = await signed_in(browser, server.url, "demo", "demo")
        await expect(crew.locator(".error")).to_have_text("Only the ship's office may use the dashboard")
        assert await crew.context.cookies() == []
        wrong = await signed_in(browser, server.url, "office", "not the password")
        await expect(wrong.locator(".error")).to_have_text("Invalid login, please try again")


async def test_the_missing_list_can_be_searched(server: ServerProcess, ship_dir: Path) -> None:
    card, last_name, cabin, station = missing_person(ship_dir)
    async with chromium() as browser:
        page = await signed_in(browser, server.url)
        rows = page.locator("#missing tbody tr")
        total = int(await page.locator("#missing-count").inner_text())
        for text in (last_name.upper(), cabin, card):
            await page.fill("#search", text)
            await expect(page.locator("#missing-count")).not_to_have_text(str(total))
            await expect(rows.filter(has_text=card)).to_have_count(1)
            assert await rows.count() == int(await page.locator("#missing-count").inner_text())
        await page.fill("#search", station)
        await expect(rows.filter(has_text=card)).to_have_count(1)
        for text in await rows.locator("td:nth-child(4)").all_inner_texts():
            assert text == station
        needs_card, needs_name = needing_help(ship_dir)
        await page.fill("#search", needs_card)
        await expect(rows.filter(has_text=needs_name)).to_have_class("needs")
        await expect(rows.locator(".needs-mark")).to_have_count(1)
        await page.fill("#search", "no such name at all")
        await expect(page.locator("#missing-count")).to_have_text("0")


async def test_the_office_starts_and_ends_a_muster_and_crew_cannot(server: ServerProcess) -> None:
    async with chromium() as browser:
        page = await signed_in(browser, server.url)
        await page.click("button[value=ASHSHP]")
        await expect(page.locator("#safety-mode")).to_contain_text("Abandon ship (ASHSHP) since")
        await expect(page.locator(".stations h2")).to_have_text("Abandon ship: lifeboats")
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/health")).json()["safety_mode"] == "ASHSHP"
            signed = await http.post("/api/v1/sign-in", json={"username": "demo", "password": "demo"})
            crew = {"Authorization": f"Bearer {signed.json()['token']}"}
            refused = await http.put("/api/v1/admin/safety-mode", json={"mode": None}, headers=crew)
            assert refused.status_code == 403
            assert (await http.get("/api/v1/safety-mode", headers=crew)).json()["mode"] == "ASHSHP"
        await page.click("button[value=end]")
        await expect(page.locator("#safety-mode")).to_contain_text("No muster under way (ended")


async def test_forms_need_the_session_csrf_token_and_the_same_origin(server: ServerProcess) -> None:
    async with chromium() as browser:
        page = await signed_in(browser, server.url)
        cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        forged = await http.post("/dashboard/safety-mode", data={"mode": "EMERCY", "csrf": "0" * 64})
        elsewhere = await http.post(
            "/dashboard/safety-mode",
            data={"mode": "EMERCY", "csrf": csrf},
            headers={"Origin": "http://evil.example"},
        )
        assert (forged.status_code, elsewhere.status_code) == (403, 403)
        assert (await http.get("/health")).json()["safety_mode"] is None


def test_dashboards_share_a_read_until_the_data_changes() -> None:
    reads: list[str] = []

    def read(name: str) -> Muster:
        reads.append(name)
        return Muster(SafetyMode.GENASS, [], [], 0, [])

    cache = MusterCache()
    first = cache.get((1, None), "GENASS", lambda: read("first"))
    assert cache.get((1, None), "GENASS", lambda: read("again")) is first
    cache.get((1, None), "EMERCY", lambda: read("other view"))
    cache.get((2, None), "GENASS", lambda: read("after an upload"))
    assert reads == ["first", "other view", "after an upload"]
