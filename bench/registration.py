"""The device side of the registration benchmarks, run as a process of its own.

``python -m bench.registration upload --server URL --runs N``: a synced device queues 500
registrations in its outbox, then per run the uploader sends and clears them; the time is
from the first upload request (token held, connection open) to the outbox commit that
clears them. ``scan``: the app (headless, 80x24) on a synced device scans N cards at a
muster station; each time is measured inside the app, from the Enter key event to the
committed registration shown (the pilot itself waits in 20 ms steps). ``search``: the same
app types last-name prefixes into the search field, N keystrokes; each time is from the
keystroke to its results shown. Each prints ``{"seconds": [...], "peak_rss_mb"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
import time
from datetime import UTC
from pathlib import Path

from bench.rss import peak_rss_mb
from sync_core.clock import SystemClock
from sync_core.device import DeviceStore, ServerClient, SyncEngine
from sync_core.device.people import People
from sync_core.device.registrar import Post, Registrar
from sync_core.device.session import sign_in
from sync_core.device.upload import Uploader
from sync_core.protocol import REGISTRATION_BATCH_MAX, SafetyMode, SyncState

UPLOAD_SIZE = REGISTRATION_BATCH_MAX


async def _queue(store: DeviceStore, registrar: Registrar, offset: int) -> None:
    """Register ``UPLOAD_SIZE`` people (registrations go to the outbox)."""
    people = sorted(store.view(People).get().everyone(), key=lambda person: person.profile_id)
    for person in people[offset : offset + UPLOAD_SIZE]:
        if person.board_card_number is not None:
            await registrar.scan(person.board_card_number, force=True)


async def timed_uploads(url: str, runs: int, work: Path) -> list[float]:
    """Seconds of each upload of ``UPLOAD_SIZE`` queued registrations."""
    seconds = []
    store = DeviceStore(work / "upload.duckdb")
    clock = SystemClock()
    async with ServerClient(url) as client:
        session = await sign_in(client, store, "demo", "demo")
        engine = SyncEngine(store, client, clock)
        if (await engine.sync(session.server_id)).status is not SyncState.SUCCESS:
            raise SystemExit("full sync failed")
        uploader = Uploader(store.outbox, client, clock, session.server_id, lambda _: None)
        station = (await client.places(SafetyMode.GENASS))[0].code
        post = Post("demo", SafetyMode.GENASS, station, clock, UTC)
        registrar = await Registrar.on_device(store, None, session.server_id, lambda: None, post)
        for run in range(runs):
            await _queue(store, registrar, UPLOAD_SIZE * run)
            started = time.perf_counter()
            status = await uploader.drain()
            seconds.append(time.perf_counter() - started)
            if status.pending or status.failed:
                raise SystemExit(f"upload left {status.pending} pending, {status.failed} failed")
    store.close()
    return seconds


async def timed_in_app(url: str, runs: int, work: Path, mode: str) -> list[float]:
    """Scan ``runs`` cards (``mode`` "scan") or type ``runs`` search keystrokes ("search")
    in the app on a freshly synced device; the in-app latencies."""
    from muster_tui.app import make_app
    from muster_tui.screens.register import RegisterScreen
    from muster_tui.widgets.person_search import PersonSearch
    from sync_core.muster import Place

    store = DeviceStore(work / "app.duckdb")
    app = make_app(url, store, tz=UTC)
    async with app.run_test(size=(80, 24)) as pilot:
        signed_in = await app.runtime.sign_in("demo", "demo")
        await app.engine.sync(signed_in.session.server_id or "")
        app._signed_in(dataclasses.replace(signed_in, first_sync=False))
        station = (await app.client.places(SafetyMode.GENASS))[0]
        registrar = await app.registrar(SafetyMode.GENASS, station.code)
        screen = RegisterScreen(registrar, Place(station.code, station.name), app.engine, None)
        await app.push_screen(screen)
        await pilot.pause()
        if mode == "scan":
            for count, card in enumerate(_cards(store, runs, station.code), start=1):
                await pilot.press(*card, "enter")
                async with asyncio.timeout(10):
                    while len(screen.scan_latencies) < count:
                        await pilot.pause(0.005)
            seconds = list(screen.scan_latencies)
        else:
            await pilot.press("f6")
            search = screen.query_one(PersonSearch)
            for name in _names(store, runs // 3):
                await pilot.press(*name[:3].lower())
                await pilot.pause(0.05)
                await pilot.press("backspace", "backspace", "backspace")
            seconds = list(search.keystroke_latencies)
    store.close()
    return seconds


def _cards(store: DeviceStore, count: int, station: str) -> list[str]:
    """Cards of people on board assigned to ``station`` (each scan registers)."""
    people = sorted(store.view(People).get().everyone(), key=lambda person: person.profile_id)
    return [
        person.board_card_number
        for person in people
        if person.muster_station == station
        and person.movement_status == "Onboard"
        and person.board_card_number
    ][:count]


def _names(store: DeviceStore, count: int) -> list[str]:
    """Distinct plain last names of three letters or more, in order."""
    names = {
        person.last_name
        for person in store.view(People).get().everyone()
        if person.last_name
        and len(person.last_name) >= 3
        and person.last_name.isascii()
        and person.last_name.isalpha()
    }
    return sorted(names)[:count]


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["upload", "scan", "search"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode == "upload":
            seconds = asyncio.run(timed_uploads(args.server, args.runs, Path(tmp)))
        else:
            seconds = asyncio.run(timed_in_app(args.server, args.runs, Path(tmp), args.mode))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
