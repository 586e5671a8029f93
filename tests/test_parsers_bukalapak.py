"""Bukalapak: historic search shape and rechecks of old links (404, closure redirect)."""

from __future__ import annotations

from pathlib import Path

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import bukalapak

EDGE = Path(__file__).parent / "fixtures" / "edge" / "bukalapak"
URL = "https://www.bukalapak.com/p/fashion-pria/bal-korea-murah-3abc9x"


def test_historic_search() -> None:
    page = bukalapak.parse_search((EDGE / "search_historic.json").read_bytes(), query="bal")
    assert page.shape_ok and page.total == 1 and not page.has_more
    item = page.listings[0]
    assert (item.listing_id, item.price, item.seller_name, item.seller_city) == (
        "3abc9x",
        2_100_000,
        "Juragan Bal",
        "Bandung",
    )
    assert not bukalapak.parse_search({"items": []}).shape_ok


def test_recheck_signals() -> None:
    gone = bukalapak.parse_detail(b"", url=URL, status=404)
    assert (gone.verdict, gone.rule, gone.listing_id) == (Verdict.REMOVED, "bukalapak.http_404", "3abc9x")
    closed = bukalapak.parse_detail(
        b"",
        url=URL,
        status=302,
        headers={"Location": "https://www.bukalapak.com/bukalapak-berhenti-jualan-produk-fisik"},
    )
    assert (closed.verdict, closed.rule) == (Verdict.REMOVED, "bukalapak.closure_redirect")
    elsewhere = bukalapak.parse_detail(
        b"", url=URL, status=302, headers={"Location": "https://www.bukalapak.com/"}
    )
    assert elsewhere.verdict == Verdict.UNOBSERVABLE
    live = bukalapak.parse_detail((EDGE / "product_page.html").read_bytes(), url=URL)
    assert (
        (live.verdict, live.listing_id) == (Verdict.LIVE, "3abc9x")
        and live.listing
        and live.listing.price == 2_100_000
    )
    assert bukalapak.parse_detail(b"", url=URL, status=503).verdict == Verdict.UNOBSERVABLE


def test_request() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert (
        bukalapak.detail_request(settings, URL).url
        == "http://127.0.0.1:7000/bukalapak/p/fashion-pria/bal-korea-murah-3abc9x"
    )
