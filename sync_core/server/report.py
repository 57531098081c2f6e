"""The drill report: who registered where, when, by which user and device; who was missing.

One row per person on board assigned a station (lifeboat in abandon ship) in the safety
mode, plus anyone else registered in it, by station then name. Only registrations made at
or after ``since`` count (a drill's start), under the shared muster rules
(``sync_core.muster``): a person's standing is their latest event in the mode. Written as
CSV (UTF-8 with a byte-order mark, so a spreadsheet opens it as it is; a cell that a
spreadsheet would run as a formula is prefixed with ``'``) or as PDF (fpdf2, one A4 page per
``PDF_ROWS_PER_PAGE`` rows, totals first).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb

from sync_core import muster
from sync_core.duck import naive_utc
from sync_core.protocol import SafetyMode

if TYPE_CHECKING:
    from fpdf import FPDF

REGISTERED = "registered"
ELSEWHERE = "registered elsewhere"
MISSING = "missing"
COLUMNS = (
    "station", "status", "last_name", "first_name", "profile_type", "cabin", "board_card_number",
    "special_needs", "own_station", "registered_at", "registered_by", "device_id",
)  # fmt: skip
PDF_ROWS_PER_PAGE = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Report:
    """A drill report's rows (tuples in :data:`COLUMNS` order, None for no value) and counts."""

    mode: SafetyMode
    since: datetime | None
    written_at: datetime
    rows: list[tuple[str | None, ...]]

    def total(self, status: str) -> int:
        """Rows with ``status`` (:data:`REGISTERED`, :data:`ELSEWHERE` or :data:`MISSING`)."""
        return sum(1 for row in self.rows if row[1] == status)


def read_report(
    cur: duckdb.DuckDBPyConnection, mode: SafetyMode, since: datetime | None, now: datetime
) -> Report:
    """The report of ``mode`` counting registrations from ``since`` (aware; None: all), as
    of ``now``. Run it in one transaction."""
    own = "lifeboat" if mode.by_lifeboat else "muster_station"
    rows = cur.execute(
        # The CTE named like the table limits every read of it to the drill's registrations.
        "WITH registrations AS (SELECT * FROM registrations WHERE registered_utc >= $1), "
        f"latest AS ({muster.latest_events(mode)}), "
        "reg AS (SELECT l.*, g.device_id FROM latest l JOIN registrations g USING (registration_id) "
        " WHERE l.action = 'register') "
        f'SELECT coalesce(reg.place, r."{own}") AS station, '
        f" CASE WHEN reg.place IS NULL THEN '{MISSING}' "
        f" WHEN reg.place IS NOT DISTINCT FROM r.\"{own}\" THEN '{REGISTERED}' ELSE '{ELSEWHERE}' END, "
        " r.last_name, r.first_name, r.profile_type, r.cabin, r.board_card_number, r.special_needs, "
        f' r."{own}", reg.registered_at, reg.username, reg.device_id '
        "FROM reservations r LEFT JOIN reg USING (profile_id) "
        f"WHERE reg.place IS NOT NULL OR (r.movement_status = 'Onboard' AND r.\"{own}\" IS NOT NULL) "
        "ORDER BY station, r.last_name, r.first_name, r.profile_id",
        [naive_utc(since or _EPOCH)],
    ).fetchall()
    return Report(mode, since, now, rows)


def csv_bytes(report: Report) -> bytes:
    """The report as CSV: a header row of :data:`COLUMNS`, then one row per person."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows([_cell(value) for value in row] for row in report.rows)
    return ("\ufeff" + out.getvalue()).encode()


def _cell(value: str | None) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


_PDF_COLUMNS = (  # (title, index in a row, width in mm)
    ("Station", 0, 16), ("Status", 1, 30), ("Name", 2, 52), ("Cabin", 5, 14), ("Card", 6, 22),
    ("Needs", 7, 12), ("Registered", 9, 20), ("By", 10, 16), ("Device", 11, 8),
)  # fmt: skip


def pdf_bytes(report: Report) -> bytes:
    """The report as an A4 PDF: title, totals, then a table of every row (Needs shows "yes"
    for special needs, Device the first characters of the device id)."""
    from fpdf import FPDF  # ~0.1 s to import; only a report needs it

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(10, 10)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(
        0,
        8,
        _latin(f"Muster report: {report.mode.label} ({report.mode.value})"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("helvetica", "", 9)
    since = report.since.isoformat(timespec="minutes") if report.since else "the first registration"
    pdf.cell(0, 5, f"Registrations since {since}; written {report.written_at.isoformat(timespec='seconds')}",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    registered, elsewhere, missing = (report.total(s) for s in (REGISTERED, ELSEWHERE, MISSING))
    totals = (
        f"Totals: registered {registered + elsewhere} (at another station {elsewhere}); missing {missing}"
    )
    pdf.cell(0, 6, totals, new_x="LMARGIN", new_y="NEXT")
    for start in range(0, max(len(report.rows), 1), PDF_ROWS_PER_PAGE):
        if start:
            pdf.add_page()
        _pdf_table(pdf, report.rows[start : start + PDF_ROWS_PER_PAGE])
    return bytes(pdf.output())


def _pdf_table(pdf: FPDF, rows: list[tuple[str | None, ...]]) -> None:
    pdf.set_font("helvetica", "B", 8)
    for title, _, width in _PDF_COLUMNS:
        pdf.cell(width, 6, title, border="B")
    pdf.ln(6)
    pdf.set_font("helvetica", "", 8)
    for row in rows:
        for _, index, width in _PDF_COLUMNS:
            pdf.cell(width, 6, _latin(_pdf_text(row, index)[: int(width / 1.6)]))
        pdf.ln(6)


def _pdf_text(row: tuple[str | None, ...], index: int) -> str:
    if index == 2:
        return ", ".join(part for part in (row[2], row[3]) if part)
    if index == 7:
        return "yes" if row[7] else ""
    if index == 9:
        return (row[9] or "")[11:16]
    return row[index] or ""


def _latin(text: str) -> str:
    """``text`` in the PDF core fonts' Latin-1 (others shown as ``?``), control characters dropped."""
    printable = "".join(ch for ch in text if ch.isprintable())
    return printable.encode("latin-1", "replace").decode("latin-1")
