"""``make bench`` lines for the terminal: bytes the app writes to a pty, per profile and size.

``python -m bench.tty [--muster PATH] [--profiles full,ansi16,serial] [--sizes 80x24,40x20]``
runs ``muster app`` on a pty (:class:`bench.pty_terminal.PtyTerminal`, which answers the
terminal's queries) against a real server on 127.0.0.1, with a device store synced
beforehand, and prints one JSON object a line: ``{"name", "profile", "size", "bytes",
"seconds_at_9600", ...}``. The profile is given as ``MUSTER_PROFILE`` (an older ``muster``
without profiles ignores it: ``--muster`` of another checkout measures a baseline). The
serial profile runs with ``TERM=vt100``, the others with ``TERM=xterm-256color``.

Lines (bytes as a 9,600-baud line carries them, 960 bytes a second):
- ``tty_first_paint``: from start until 1 s without output (``seconds_to_sign_in``: until
  the sign-in screen's "Username" shows);
- ``tty_per_char``: each of the 8 letters of a username and password, until 0.3 s quiet,
  the mean (the Enter between them is not counted);
- ``tty_idle_per_s``: bytes a second during 3 s at the sign-in screen after typing;
- ``tty_screen_change``: one line per change (``to``: menu, register_setup, register),
  from the key until the new screen shows and then 1 s quiet;
- ``tty_per_scan``: each of ``SCANS`` card scans at the Register screen until the count of
  registered people moves and then 1 s quiet, the median (and ``max_bytes``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from bench.pty_terminal import PtyTerminal
from sync_core.server.process import ServerProcess

DATA = Path(__file__).parent / ".data"
PRESET = "small"
SEED = 1
SCANS = 10
STATION = "A"
BAUD_BYTES_PER_S = 960
PROFILE_TERMS = {"full": "xterm-256color", "ansi16": "xterm-256color", "serial": "vt100"}
SIZES = ("80x24", "40x20")
MUSTER = str(Path(sys.executable).parent / "muster")
QUIET = 1.0
KEY_QUIET = 0.3
IDLE_S = 3.0
# (name, key, text the new screen shows): Enter signs in, F2 opens the set-up, F5 Register
SCREEN_CHANGES = (
    ("menu", b"\r", "Main menu"),
    ("register_setup", b"\x1bOQ", "Safety mode"),
    ("register", b"\x1b[15~", "Missing ("),
)


def ensure_template(muster: str) -> tuple[Path, Path]:
    """The small ship's Parquet files and a directory holding a server store and a device
    store synced with it (made on first use)."""
    ship, template = DATA / f"ship-{PRESET}", DATA / f"tty-{PRESET}"
    if not (ship / "reservations.parquet").is_file():
        from fixtures.ship import generate_ship

        generate_ship(PRESET, SEED, ship)
    if not (template / "device.duckdb").is_file():
        template.mkdir(parents=True, exist_ok=True)
        with ServerProcess(ship, template / "server.duckdb", template / "server.log") as url:
            sync = [muster, "sync", "--server", url, "--db", str(template / "device.duckdb")]
            subprocess.run([*sync, "--user", "demo", "--password", "demo"], check=True, capture_output=True)
    return ship, template


def cards(ship: Path) -> list[str]:
    """``SCANS`` board card numbers of people on board assigned to muster station ``STATION``
    (the set-up's default): each scan registers one more."""
    query = (
        "SELECT board_card_number FROM read_parquet(?) WHERE muster_station = ? "
        "AND movement_status = 'Onboard' AND board_card_number IS NOT NULL ORDER BY profile_id LIMIT ?"
    )
    rows = duckdb.execute(query, [str(ship / "reservations.parquet"), STATION, SCANS]).fetchall()
    return [row[0] for row in rows]


def line(name: str, profile: str, size: str, nbytes: float, **extra: object) -> dict:
    """One ``make bench`` line."""
    seconds = round(nbytes / BAUD_BYTES_PER_S, 3)
    return {
        "name": name,
        "profile": profile,
        "size": size,
        "bytes": round(nbytes),
        "seconds_at_9600": seconds,
    } | extra


def phase(term: PtyTerminal, keys: bytes, quiet: float = QUIET, until: str | None = None) -> int:
    """Bytes the app writes after ``keys`` until ``until`` shows on the screen (if given),
    then ``quiet`` seconds without output."""
    before = term.received
    term.send(keys)
    if until is not None:
        term.wait_text(until)
    term.wait_quiet(quiet)
    return term.received - before


def next_count(text: str) -> str | None:
    """What the Register screen's counts say after one more registration (None: no counts
    on the screen)."""
    found = re.search(r"(\d+) registered here", text)
    return f"{int(found.group(1)) + 1} registered here" if found else None


def session(
    muster: str, profile: str, columns: int, lines: int, ship: Path, template: Path
) -> Iterator[dict]:
    """The lines of one app session on a copy of the template's stores."""
    size = f"{columns}x{lines}"
    with tempfile.TemporaryDirectory(prefix="tty-bench-") as work_dir:
        work = Path(work_dir)
        for name in ("server.duckdb", "device.duckdb"):
            shutil.copy(template / name, work / name)
        with ServerProcess(ship, work / "server.duckdb", work / "server.log") as url:
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL", "NO_COLOR", "COLUMNS"))
            }
            env |= {"TERM": PROFILE_TERMS[profile], "MUSTER_PROFILE": profile, "HOME": str(work)}
            argv = [muster, "app", "--server", url, "--db", str(work / "device.duckdb")]
            with PtyTerminal(argv, env, columns, lines) as term:
                seen = term.wait_text("Username") - term.started
                term.wait_quiet(QUIET)
                yield line("tty_first_paint", profile, size, term.received, seconds_to_sign_in=round(seen, 3))
                typed = [phase(term, key.encode(), KEY_QUIET) for key in "demo"]
                phase(term, b"\r", KEY_QUIET)  # to the password field
                typed += [phase(term, key.encode(), KEY_QUIET) for key in "demo"]
                yield line("tty_per_char", profile, size, statistics.mean(typed), keys=len(typed))
                before = term.received
                time.sleep(IDLE_S)  # a fixed window: idle output (a blinking cursor) never pauses
                yield line("tty_idle_per_s", profile, size, (term.received - before) / IDLE_S)
                for to, key, shown in SCREEN_CHANGES:
                    yield line("tty_screen_change", profile, size, phase(term, key, until=shown), to=to)
                scans = [
                    phase(term, card.encode() + b"\r", until=next_count(term.text())) for card in cards(ship)
                ]
                yield line("tty_per_scan", profile, size, statistics.median(scans), max_bytes=max(scans))


def bench_lines(muster: str, profiles: list[str], sizes: list[str]) -> Iterator[dict]:
    """Every line, profile by profile and size by size."""
    ship, template = ensure_template(muster)
    for profile in profiles:
        for size in sizes:
            columns, lines = (int(part) for part in size.split("x"))
            yield from session(muster, profile, columns, lines, ship, template)


def main() -> None:
    """Parse the arguments and print the lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--muster", default=MUSTER)
    parser.add_argument("--profiles", default=",".join(PROFILE_TERMS))
    parser.add_argument("--sizes", default=",".join(SIZES))
    args = parser.parse_args()
    for result in bench_lines(args.muster, args.profiles.split(","), args.sizes.split(",")):
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
