"""A dashboard left open during a benchmark: the office signed in through the sign-in form,
then its live part fetched every second (as htmx does in a browser), on a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

POLL_SECONDS = 1.0


@contextmanager
def dashboard_open(url: str) -> Iterator[list[float]]:
    """Poll ``url``'s dashboard while the block runs; yields the list of each poll's seconds."""
    seconds: list[float] = []
    stop = threading.Event()
    with httpx.Client(base_url=url, timeout=30) as http:
        signed = http.post("/dashboard/sign-in", data={"username": "office", "password": "office"})
        if signed.status_code != 303:  # to the dashboard, with the session cookie
            raise RuntimeError(f"dashboard sign-in failed: HTTP {signed.status_code}")

        def poll() -> None:
            while not stop.wait(POLL_SECONDS):
                answer = http.get("/dashboard/live", params={"mode": "GENASS"})
                answer.raise_for_status()
                seconds.append(answer.elapsed.total_seconds())

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield seconds
        finally:
            stop.set()
            poller.join()
