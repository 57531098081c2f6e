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
    "station", "status", "profile_id", "last_name", "first_name", "profile_type", "cabin",
    "board_card_number", "special_needs", "own_station", "registered_at", "registered_by", "device_id",
)  # fmt: skip
_AT = {name: index for index, name in enumerate(COLUMNS)}
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
        return sum(1 for row in self.rows if row[_AT["status"]] == status)


def read_report(
    cur: duckdb.DuckDBPyConnection, mode: SafetyMode, since: datetime | None, now: datetime
) -> Report:
    """The report of ``mode`` counting registrations from ``since`` (aware; None: all), as
    of ``now``. Run it in one transaction."""
    own = "lifeboat" if mode.by_lifeboat else "muster_station"
    rows = cur.execute(
        # The CTE named like the table limits every read of it to the drill's registrations.
        "WITH registrations AS (SELECT * FROM registrations WHERE registered_utc >= $1), "
        f"reg AS (SELECT * FROM ({muster.latest_events(mode, 'device_id')}) AS latest "
        " WHERE action = 'register') "
        f'SELECT coalesce(reg.place, r."{own}") AS station, '
        f" CASE WHEN reg.place IS NULL THEN '{MISSING}' "
        f" WHEN reg.place IS NOT DISTINCT FROM r.\"{own}\" THEN '{REGISTERED}' ELSE '{ELSEWHERE}' END, "
        " r.profile_id, r.last_name, r.first_name, r.profile_type, r.cabin, r.board_card_number, "
        " r.special_needs, "
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


_PDF_COLUMNS = (  # (title, column, width in mm)
    ("Station", "station", 16), ("Status", "status", 26), ("Name", "last_name", 50),
    ("Cabin", "cabin", 14), ("Card", "board_card_number", 22), ("Needs", "special_needs", 12),
    ("Registered", "registered_at", 20), ("By", "registered_by", 16), ("Device", "device_id", 14),
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
    """A table head and ``rows`` from the current line down, 6 mm a row. Cells are placed
    with ``text`` (a third of ``cell``'s cost: 10,000 rows in about a second)."""
    pdf.set_font("helvetica", "B", 8)
    y = pdf.get_y() + 4
    _pdf_line(pdf, y, [title for title, _, _ in _PDF_COLUMNS])
    pdf.line(pdf.l_margin, y + 1.5, pdf.w - pdf.r_margin, y + 1.5)
    pdf.set_font("helvetica", "", 8)
    for row in rows:
        y += 6
        _pdf_line(pdf, y, [_pdf_text(row, column) for _, column, _ in _PDF_COLUMNS])


def _pdf_line(pdf: FPDF, y: float, texts: list[str]) -> None:
    x = pdf.l_margin
    for text, (_, _, width) in zip(texts, _PDF_COLUMNS, strict=True):
        pdf.text(x, y, _latin(text[: int(width / 1.6)]))
        x += width


def _pdf_text(row: tuple[str | None, ...], column: str) -> str:
    """What the PDF shows of ``column``: last and first name together, "yes" for special
    needs, the registration's time of day (device time)."""
    if column == "last_name":
        return ", ".join(part for part in (row[_AT["last_name"]], row[_AT["first_name"]]) if part)
    value = row[_AT[column]] or ""
    if column == "special_needs":
        return "yes" if value else ""
    return value[11:16] if column == "registered_at" else value


def _latin(text: str) -> str:
    """``text`` in the PDF core fonts' Latin-1 (others shown as ``?``), control characters dropped."""
    printable = "".join(ch for ch in text if ch.isprintable())
    return printable.encode("latin-1", "replace").decode("latin-1")
