"""Link-list writers: CSV (spreadsheets and scripts), XLSX (people), JSON (machine intake).

All three read :data:`crawler.exports.rows.COLUMNS`, so a column added there appears everywhere. Times are
written in the zone of ``Settings.timezone`` (WIB by default): ISO 8601 with offset in CSV and JSON, real
Excel date-times (zone-less, labelled WIB in the header) in XLSX.

Each row is converted once (:func:`row_values`: CSV/JSON scalars in column order); CSV, JSON and the
``TakedownItem.snapshot`` all reuse that list, so a 100,000-item batch pays the conversion once.

XLSX uses openpyxl's write-only workbook (styles, workbook parts, the small ``Pelanggar berulang`` and
``Info`` sheets, and the list sheet's frozen header, column widths and autofilter all come from openpyxl).
The list sheet's cells are the one part serialised here: openpyxl builds a ``Cell`` and an lxml element
per value (about 20 µs a cell, 40 s for 2 million cells), so :class:`_StreamedSheetWriter` — openpyxl's own
``WorksheetWriter`` with two hooks — writes ``<sheetData>`` rows, the ``<hyperlinks>`` list and the
sheet's hyperlink relationships as pre-escaped XML text in the form openpyxl writes them (inline
strings, ``t="n"`` numbers, style ids registered in openpyxl's style table). Cells: listing URLs are
clickable hyperlinks in the Hyperlink style, prices carry the rupiah format ``#,##0``, date-times
openpyxl's date-time format, scores are floats; empty values leave the cell out. Text is written as
text (never as a formula), control characters Excel rejects are dropped and text is cut at 32,767
characters (Excel's cell limit). Text a seller wrote can start a formula when staff open the file (``=``,
``+``, ``-``, ``@``, tab, CR): every CSV and XLSX text cell goes through
:func:`crawler.hostile.spreadsheet_text`, which puts a ``'`` in front of such a value (OWASP's advice);
JSON keeps values as they are. To add a format, write a function ``write_<fmt>(path, values, …)`` here
and call it from :func:`crawler.exports.service.create_batch`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from lxml import etree
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.packaging.relationship import RelationshipList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.xml.constants import REL_NS, SHEET_MAIN_NS
from openpyxl.xml.functions import xmlfile

from crawler.exports.common import iso_local
from crawler.exports.rows import COLUMNS, ExportRow
from crawler.hostile import spreadsheet_text

XLSX_PRICE_FORMAT = "#,##0"
# Excel refuses cell hyperlinks beyond this length; longer URLs stay as plain text.
XLSX_MAX_URL = 2079
XLSX_MAX_TEXT = 32767  # characters in one cell
_HYPERLINK_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
# control characters XML 1.0 cannot carry (openpyxl refuses them; a captured title may contain one)
_ILLEGAL_XML = re.compile(r"[\000-\010\013\014\016-\037]")
_ROWS_PER_WRITE = 1000

KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
_GET_ALL = attrgetter(*KEYS)
_DATETIME_INDEXES: tuple[int, ...] = tuple(i for i, c in enumerate(COLUMNS) if c.kind == "datetime")
_JSON = json.JSONEncoder(
    ensure_ascii=False
)  # one encoder: json.dumps(…, ensure_ascii=False) builds one per call


def row_values(row: ExportRow, tz: ZoneInfo) -> list[Any]:
    """The row as CSV/JSON scalars, in column order (date-times as ISO 8601 in ``tz``)."""
    values = list(_GET_ALL(row))
    for index in _DATETIME_INDEXES:
        values[index] = iso_local(values[index], tz)
    return values


def row_dict(row: ExportRow, tz: ZoneInfo) -> dict[str, Any]:
    return dict(zip(KEYS, row_values(row, tz), strict=True))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return spreadsheet_text(value) if type(value) is str else value


def write_csv(path: Path, values: Iterable[Sequence[Any]]) -> Path:
    """UTF-8, comma-separated, CRLF line ends (RFC 4180), header = column keys; empty cell for no value;
    text that would start a formula gets a leading ``'``.

    ``values`` are :func:`row_values` lists.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(KEYS)
        writer.writerows([_csv_cell(v) for v in row] for row in values)
    return path


def write_json(path: Path, values: Sequence[Sequence[Any]], meta: dict[str, Any]) -> Path:
    """``{...meta, "columns": [...], "items": [...]}``, one item per line: streams and diffs well."""
    encode = _JSON.encode
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("{\n")
        for key, value in meta.items():
            handle.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, sort_keys=True)},\n")
        handle.write(f'  "columns": {json.dumps(list(KEYS))},\n')
        handle.write('  "items": [')
        for index, row in enumerate(values):
            handle.write(",\n    " if index else "\n    ")
            handle.write(encode(dict(zip(KEYS, row, strict=True))))
        handle.write("\n  ]\n}\n" if values else "]\n}\n")
    return path


def _naive_local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    # Excel has no time zones: store the WIB wall-clock time, and say WIB in the header.
    return None if value is None else value.astimezone(tz).replace(tzinfo=None, microsecond=0)


class _LinkRelationships(RelationshipList):
    """The sheet's relationships, with its hyperlink targets kept as strings (one object per link costs)."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def __len__(self) -> int:  # ids (rIdN) and truthiness count the hyperlinks too
        return super().__len__() + len(self.targets)

    def to_tree(self) -> Any:
        tree = super().to_tree()  # any ordinary relationship (none today) first, as rId1…
        first = super().__len__() + 1
        parts = ["<Relationships>"]  # no namespace here: openpyxl's root carries it, as for its own children
        parts.extend(
            f'<Relationship Id="rId{n}" Target={quoteattr(t)} TargetMode="External" Type="{_HYPERLINK_REL}"/>'
            for n, t in enumerate(self.targets, start=first)
        )
        parts.append("</Relationships>")
        links = etree.fromstring(_ILLEGAL_XML.sub("", "".join(parts)).encode("utf-8"))
        for child in list(links):
            tree.append(child)
        return tree


class _StreamedSheetWriter(WorksheetWriter):
    """openpyxl's write-only sheet writer whose ``<sheetData>`` and hyperlinks arrive as XML text.

    :meth:`write_sheet_data` streams the rows once (inside openpyxl's own ``<worksheet>`` stream, after
    the sheet views, columns and format it wrote); openpyxl then writes the tail (autofilter, …) and
    calls :meth:`write_hyperlinks`, which lists ``(ref, rId)`` pairs collected while streaming.
    """

    def __init__(self, ws: Any) -> None:
        self._handle: IO[bytes] | None = None
        self._written = False
        self.links: list[str] = []  # cell references, in the order of self._rels.targets
        super().__init__(ws)
        self._rels = _LinkRelationships()

    def get_stream(self) -> Any:
        with open(self.out, "wb") as handle, xmlfile(handle) as xf:
            self._handle = handle
            with xf.element("worksheet", xmlns=SHEET_MAIN_NS):
                try:
                    while True:
                        el = yield
                        if el is True:
                            yield xf
                        elif el is not None:
                            xf.write(el)
                except GeneratorExit:
                    pass

    def write_sheet_data(self, chunks: Iterable[str]) -> None:
        """``<sheetData>`` from pre-serialised ``<row>`` text, written straight to the sheet file."""
        xf = self.xf.send(True)
        assert self._handle is not None
        with xf.element("sheetData"):
            xf.flush()
            for chunk in chunks:
                self._handle.write(chunk.encode("utf-8"))
        self.xf.send(None)
        self._written = True

    def write_rows(self) -> None:
        if not self._written:  # nothing was streamed: an empty sheet, the openpyxl way
            super().write_rows()

    def write_hyperlinks(self) -> None:
        if not self.links:
            return
        first = len(self._rels) - len(self.links) + 1
        parts = [f'<hyperlinks xmlns:r="{REL_NS}">']  # in the sheet's default namespace, like openpyxl's
        parts.extend(
            f'<hyperlink ref="{ref}" r:id="rId{n}"/>' for n, ref in enumerate(self.links, start=first)
        )
        parts.append("</hyperlinks>")
        self.xf.send(etree.fromstring("".join(parts).encode("utf-8")))


def _style_id(ws: Any, **style: Any) -> int:
    """Register a style in the workbook's style table (openpyxl's) and return its id."""
    value = style.pop("value", None)
    cell = WriteOnlyCell(ws, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return int(cell.style_id)


def _text(value: str) -> str:
    """An inline string's ``<is>`` element (escaped; checks first: most values need no escaping); a value
    that would start a formula gets a leading ``'``."""
    value = spreadsheet_text(value)
    if len(value) > XLSX_MAX_TEXT:
        value = value[:XLSX_MAX_TEXT]
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")  # as lxml writes it (a bare CR would be read back as LF)
    if value[:1].isspace() or value[-1:].isspace():
        return f'<is><t xml:space="preserve">{value}</t></is>'
    return f"<is><t>{value}</t></is>"


def _plain_rows(rows: Iterable[Sequence[Any]], first: int, header_style: int | None = None) -> Iterator[str]:
    """``<row>`` text for a small sheet of text and numbers; the first row in bold when ``header_style``."""
    number = first - 1
    for values in rows:
        number += 1
        r = str(number)
        style = f' s="{header_style}"' if header_style is not None and number == first else ""
        cells = [f'<row r="{r}">']
        for index, value in enumerate(values, start=1):
            if value is None or value == "":
                continue
            ref = get_column_letter(index) + r
            if type(value) is str:
                cells.append(f'<c r="{ref}"{style} t="inlineStr">{_text(value)}</c>')
            elif type(value) is int or type(value) is float:
                cells.append(f'<c r="{ref}"{style} t="n"><v>{value:.16g}</v></c>')
            else:
                raise TypeError(f"cannot write {type(value).__name__} to XLSX")
        cells.append("</row>")
        yield _ILLEGAL_XML.sub("", "".join(cells))


def _streamed_sheet(wb: Workbook, title: str, widths: Sequence[int]) -> tuple[Any, _StreamedSheetWriter]:
    """A write-only sheet with column widths, frozen header, and a writer for streamed rows."""
    ws = wb.create_sheet(title)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    writer = _StreamedSheetWriter(ws)
    return ws, writer


def _start(ws: Any, writer: _StreamedSheetWriter) -> None:
    writer.write_top()
    ws._writer = writer  # the write-only sheet closes (tail, hyperlinks) through this writer on save


def _sheet_rows(
    rows: Sequence[ExportRow],
    tz: ZoneInfo,
    writer: _StreamedSheetWriter,
    *,
    header_style: int,
    link_style: int,
    price_style: int,
    date_style: int,
) -> Iterator[str]:
    """``<row>`` elements: the header, then one per export row; yields text in chunks of rows."""
    letters = [get_column_letter(i) for i in range(1, len(COLUMNS) + 1)]
    header = "".join(
        f'<c r="{letter}1" s="{header_style}" t="inlineStr">{_text(c.label)}</c>'
        for letter, c in zip(letters, COLUMNS, strict=True)
    )
    parts: list[str] = [f'<row r="1">{header}</row>']
    link_column = KEYS.index("listing_url")
    price_column = KEYS.index("price")
    plan = list(enumerate(letters))
    links, targets = writer.links, writer._rels.targets
    number = 1
    for row in rows:
        number += 1
        r = str(number)
        cells = [f'<row r="{r}">']
        for index, letter in plan:
            value = getattr(row, KEYS[index])
            if value is None or value == "":
                continue
            kind = type(value)
            if kind is str:
                if index == link_column and len(value) <= XLSX_MAX_URL:
                    links.append(letter + r)
                    targets.append(value)
                    cells.append(f'<c r="{letter}{r}" s="{link_style}" t="inlineStr">{_text(value)}</c>')
                else:
                    cells.append(f'<c r="{letter}{r}" t="inlineStr">{_text(value)}</c>')
            elif kind is int or kind is float:
                style = f' s="{price_style}"' if index == price_column else ""
                cells.append(f'<c r="{letter}{r}"{style} t="n"><v>{value:.16g}</v></c>')
            elif isinstance(value, datetime):
                serial = to_excel(_naive_local(value, tz))
                cells.append(f'<c r="{letter}{r}" s="{date_style}" t="n"><v>{serial:.16g}</v></c>')
            else:
                raise TypeError(f"column {KEYS[index]}: cannot write {kind.__name__} to XLSX")
        cells.append("</row>")
        parts.append("".join(cells))
        if len(parts) >= _ROWS_PER_WRITE:
            yield _ILLEGAL_XML.sub("", "".join(parts))
            parts = []
    if parts:
        yield _ILLEGAL_XML.sub("", "".join(parts))


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
    ws, writer = _streamed_sheet(wb, "Tautan", [c.width for c in COLUMNS])
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    # openpyxl registers the styles (and writes styles.xml); the cells only carry their ids
    header_style = _style_id(
        ws,
        font=Font(bold=True),
        fill=PatternFill("solid", fgColor="DDEBF7"),
        alignment=Alignment(wrap_text=True, vertical="top"),
    )
    link_style = _style_id(ws, style="Hyperlink")
    price_style = _style_id(ws, number_format=XLSX_PRICE_FORMAT)
    date_style = _style_id(ws, value=datetime(2026, 1, 1))  # openpyxl's own date-time format
    _start(ws, writer)
    writer.write_sheet_data(
        _sheet_rows(
            rows,
            tz,
            writer,
            header_style=header_style,
            link_style=link_style,
            price_style=price_style,
            date_style=date_style,
        )
    )

    if offenders:  # one row per account of every group: thousands for a big batch, so streamed too
        sheet, sheet_writer = _streamed_sheet(wb, "Pelanggar berulang", (8, 12, 18, 24, 16, 36, 10, 36))
        bold = _style_id(sheet, font=Font(bold=True))
        _start(sheet, sheet_writer)
        labels = ("Grup", "Platform", "ID penjual", "Nama penjual", "Kota", "URL toko", "Terkonfirmasi",
                  "Kontak bersama")  # fmt: skip
        sheet_writer.write_sheet_data(_plain_rows([labels, *offenders], 1, bold))

    info_sheet = wb.create_sheet("Info")
    info_sheet.column_dimensions["A"].width = 28
    info_sheet.column_dimensions["B"].width = 90
    for label, value in info:
        # openpyxl would store "=…" as a formula
        info_sheet.append([_bold(info_sheet, label), spreadsheet_text(_ILLEGAL_XML.sub("", value))])
    wb.save(path)
    return path


def _bold(ws: Any, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = Font(bold=True)
    return cell
