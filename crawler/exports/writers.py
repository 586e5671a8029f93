"""Link-list writers: CSV (spreadsheets and scripts), XLSX (people), JSON (machine intake).

All three read :data:`crawler.exports.rows.COLUMNS`, so a column added there appears everywhere. Times are
written in the zone of ``Settings.timezone`` (WIB by default): ISO 8601 with offset in CSV and JSON, real
Excel date-times (zone-less, labelled WIB in the header) in XLSX.

XLSX uses openpyxl's write-only mode so memory stays flat for long lists; each sheet has a frozen header
row, an autofilter over the data, clickable listing URLs (cell hyperlinks in the Hyperlink style), a
rupiah number format and real date-times (openpyxl's date-time format). To add a format, write a function
``write_<fmt>(path, rows, meta, tz)`` here and call it from :func:`crawler.exports.service.create_batch`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from copy import copy
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from crawler.exports.common import iso_local
from crawler.exports.rows import COLUMNS, ExportRow

XLSX_PRICE_FORMAT = "#,##0"
# Excel refuses cell hyperlinks beyond this length; longer URLs stay as plain text.
XLSX_MAX_URL = 2079


def row_values(row: ExportRow, tz: ZoneInfo) -> list[Any]:
    """The row as CSV/JSON scalars, in column order."""
    values: list[Any] = []
    for column in COLUMNS:
        value = getattr(row, column.key)
        if column.kind == "datetime":
            value = iso_local(value, tz)
        values.append(value)
    return values


def row_dict(row: ExportRow, tz: ZoneInfo) -> dict[str, Any]:
    return dict(zip((c.key for c in COLUMNS), row_values(row, tz), strict=True))


def write_csv(path: Path, rows: Sequence[ExportRow], tz: ZoneInfo) -> Path:
    """UTF-8, comma-separated, CRLF line ends (RFC 4180), header = column keys; empty cell for no value."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.key for c in COLUMNS])
        for row in rows:
            writer.writerow(["" if v is None else v for v in row_values(row, tz)])
    return path


def write_json(path: Path, rows: Sequence[ExportRow], meta: dict[str, Any], tz: ZoneInfo) -> Path:
    """``{...meta, "columns": [...], "items": [...]}``, one item per line: streams and diffs well."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("{\n")
        for key, value in meta.items():
            handle.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, sort_keys=True)},\n")
        handle.write(f'  "columns": {json.dumps([c.key for c in COLUMNS])},\n')
        handle.write('  "items": [')
        for index, row in enumerate(rows):
            handle.write(",\n    " if index else "\n    ")
            handle.write(json.dumps(row_dict(row, tz), ensure_ascii=False))
        handle.write("\n  ]\n}\n" if rows else "]\n}\n")
    return path


def _naive_local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    # Excel has no time zones: store the WIB wall-clock time, and say WIB in the header.
    return None if value is None else value.astimezone(tz).replace(tzinfo=None, microsecond=0)


def write_xlsx(
    path: Path,
    rows: Sequence[ExportRow],
    tz: ZoneInfo,
    *,
    info: Sequence[tuple[str, str]] = (),
    offenders: Sequence[Sequence[Any]] = (),
) -> Path:
    """Sheets: ``Tautan`` (the list), optionally ``Pelanggar berulang``, and ``Info`` (batch facts)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Tautan")
    for index, column in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.freeze_panes = "A2"
    last = get_column_letter(len(COLUMNS))
    ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"

    header_font, header_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    header: list[Any] = []
    for column in COLUMNS:
        cell = WriteOnlyCell(ws, value=column.label)
        cell.font, cell.fill = header_font, header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)

    # Every styled cell is a Python object and costs several times a plain value, so only the two columns
    # that need it get one: the listing URL (hyperlink) and the price (rupiah format). Datetimes and floats
    # are plain values: openpyxl gives datetimes its date-time format by itself. Style prototypes are
    # copied (a StyleArray copy) instead of assigning named styles per cell.
    url_proto, price_proto = WriteOnlyCell(ws), WriteOnlyCell(ws)
    url_proto.style = "Hyperlink"
    price_proto.number_format = XLSX_PRICE_FORMAT
    url_style, price_style = url_proto._style, price_proto._style
    plan = [(c.key, "link" if c.key == "listing_url" else c.kind) for c in COLUMNS]

    for row in rows:
        out: list[Any] = []
        for key, kind in plan:
            value = getattr(row, key)
            if value is None or value == "":
                out.append(None)
            elif kind == "link" and len(value) <= XLSX_MAX_URL:
                cell = WriteOnlyCell(ws, value=value)
                cell.hyperlink = value
                cell._style = copy(url_style)
                out.append(cell)
            elif kind == "datetime":
                out.append(_naive_local(value, tz))
            elif key == "price":
                cell = WriteOnlyCell(ws, value=value)
                cell._style = copy(price_style)
                out.append(cell)
            else:
                out.append(value)
        ws.append(out)

    if offenders:
        sheet = wb.create_sheet("Pelanggar berulang")
        sheet.freeze_panes = "A2"
        for index, width in enumerate((8, 12, 18, 24, 16, 36, 10, 36), start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        labels = ("Grup", "Platform", "ID penjual", "Nama penjual", "Kota", "URL toko", "Terkonfirmasi",
                  "Kontak bersama")  # fmt: skip
        sheet.append([_bold(sheet, label) for label in labels])
        for values in offenders:
            sheet.append(list(values))

    info_sheet = wb.create_sheet("Info")
    info_sheet.column_dimensions["A"].width = 28
    info_sheet.column_dimensions["B"].width = 90
    for label, value in info:
        info_sheet.append([_bold(info_sheet, label), value])
    wb.save(path)
    return path


def _bold(ws: Any, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = Font(bold=True)
    return cell
