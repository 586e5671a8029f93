"""XLSX list sheet written as streamed XML: cell types, styles, links, escaping and edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from crawler.exports import writers
from crawler.exports.rows import COLUMNS, ExportRow

TZ = ZoneInfo("Asia/Jakarta")
COL = {c.key: i for i, c in enumerate(COLUMNS, start=1)}


def _row(no: int, **changes: Any) -> ExportRow:
    data: dict[str, Any] = {
        "no": no,
        "platform": "shopee",
        "listing_url": f"https://shopee.example/p/{no}?a=1&b=<2>",
        "listing_id": str(no),
        "listing_key": f"shopee:{no}",
        "title": f'Bal & <korea> "isi" {no}',
        "price": 1_000_000 * no,
        "seller_name": "Toko 'A'",
        "seller_id": "7",
        "seller_city": "",
        "shop_url": "https://shopee.example/shop/7",
        "matched_signals": 'bal "Bal"',
        "score": 0.1234 * no,
        "first_seen": datetime(2026, 3, 1, tzinfo=UTC),
        "captured_at": datetime(2026, 3, 2, 1, 2, 3, 456, tzinfo=UTC),
        "evidence_id": no,
        "evidence_sha256": "ab" * 32,
        "screenshot_sha256": "",
        "reviewer": "Siti — PKTN ×",
        "reviewed_at": None,
        "repeat_offender_count": 3,
    }
    data.update(changes)
    return ExportRow(**data)


def test_xlsx_cells_types_styles_and_links(tmp_path: Path) -> None:
    rows = [
        _row(1),
        _row(2, price=None, score=None, listing_url="https://long.example/" + "x" * 3000),
        _row(3, title=" padded\tand\nmulti-line ", seller_name='=HYPERLINK("http://evil")'),
        _row(4, title="bell\x07 and nul\x00 gone", matched_signals="x" * 40_000),
    ]
    path = writers.write_xlsx(tmp_path / "l.xlsx", rows, TZ, info=[("Batch", "TTB-1")])
    wb = load_workbook(path)
    ws = wb["Tautan"]
    assert [c.value for c in ws[1]] == [c.label for c in COLUMNS]
    assert ws["A1"].font.bold and ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:U5"
    assert ws.max_row == 5
    link = ws.cell(2, COL["listing_url"])
    assert link.value == "https://shopee.example/p/1?a=1&b=<2>"
    assert link.hyperlink is not None and link.hyperlink.target == link.value
    assert link.style == "Hyperlink"
    long_url = ws.cell(3, COL["listing_url"])  # beyond Excel's hyperlink limit: plain text
    assert long_url.value.startswith("https://long.example/") and long_url.hyperlink is None
    assert ws.cell(2, COL["title"]).value == 'Bal & <korea> "isi" 1'
    assert ws.cell(4, COL["title"]).value == " padded\tand\nmulti-line "  # whitespace kept
    assert ws.cell(4, COL["seller_name"]).data_type == "s"  # text, never a formula
    assert ws.cell(5, COL["title"]).value == "bell and nul gone"  # control characters dropped
    assert len(ws.cell(5, COL["matched_signals"]).value) == writers.XLSX_MAX_TEXT
    price = ws.cell(2, COL["price"])
    assert price.value == 1_000_000 and price.number_format == writers.XLSX_PRICE_FORMAT
    assert ws.cell(3, COL["price"]).value is None and ws.cell(3, COL["score"]).value is None
    score = ws.cell(3 + 1, COL["score"]).value
    assert isinstance(score, float) and abs(score - 0.3702) < 1e-12
    captured = ws.cell(2, COL["captured_at"])
    assert captured.is_date and captured.value == datetime(2026, 3, 2, 8, 2, 3)  # WIB, whole seconds
    assert ws.cell(2, COL["reviewed_at"]).value is None
    assert ws.cell(2, COL["reviewer"]).value == "Siti — PKTN ×"
    assert isinstance(ws.cell(2, COL["no"]).value, int) and ws.cell(2, COL["seller_city"]).value is None
    assert wb["Info"]["A1"].value == "Batch" and wb["Info"]["B1"].value == "TTB-1"
    links = [c.hyperlink.ref for r in ws.iter_rows(min_row=2) for c in r if c.hyperlink is not None]
    assert links == ["C2", "C4", "C5"]


def test_xlsx_with_no_rows_is_a_valid_sheet(tmp_path: Path) -> None:
    wb = load_workbook(writers.write_xlsx(tmp_path / "e.xlsx", [], TZ))
    ws = wb["Tautan"]
    assert ws.max_row == 1 and ws.cell(1, 1).value == "No"


def test_csv_and_json_use_the_converted_values(tmp_path: Path) -> None:
    values = [writers.row_values(_row(1), TZ)]
    assert values[0][COL["captured_at"] - 1] == "2026-03-02T08:02:03+07:00"
    assert values[0][COL["reviewed_at"] - 1] == ""
    text = writers.write_csv(tmp_path / "l.csv", values).read_text("utf-8")
    assert text.splitlines()[0] == ",".join(writers.KEYS)
    data = writers.write_json(tmp_path / "l.json", values, {"batch": "B"}).read_text("utf-8")
    assert '"batch": "B"' in data and '"reviewer": "Siti — PKTN ×"' in data
    assert writers.write_json(tmp_path / "e.json", [], {}).read_text("utf-8").endswith('"items": []\n}\n')
