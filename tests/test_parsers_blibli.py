"""Blibli: search and _summary detail, wrapped (real captures) and unwrapped; 422 and 404."""

from __future__ import annotations

import json
from pathlib import Path

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import blibli

FIX = Path(__file__).parent / "fixtures"
REAL = FIX / "real" / "blibli"
EDGE = FIX / "edge" / "blibli"


def test_search_real_wrapped() -> None:
    page = blibli.parse_search((REAL / "search_kaos_wrapped.json").read_bytes(), query="kaos")
    assert page.shape_ok and page.block is None
    assert page.total == 4633 and page.has_more and len(page.listings) == 32
    first = page.listings[0]
    assert (
        first.listing_id == "UMB-60239-00003"
        and first.title == "Blucrat Kaos Apparel Script Kaos Distro Pria"
    )
    assert first.price == 99_000 and first.seller_id == "UMB-60239" and first.seller_city == "Bandung"
    assert first.url == (
        "https://www.blibli.com/p/blucrat-kaos-apparel-script-kaos-distro-pria/pc--MTA-7071274?ds=UMB-60239-00003-00009"
    )
    assert first.extra_ids["product_code"] == "MTA-7071274" and first.status == "AVAILABLE"
    assert blibli.listing_id_from_url(first.url) == first.listing_id
    ps = next(item for item in page.listings if item.listing_id == "UMM-60236-00046")
    assert "/ps--UMM-60236-00046" in ps.url and blibli.listing_id_from_url(ps.url) == "UMM-60236-00046"


def test_search_unwrapped_same_result() -> None:
    wrapped = json.loads((REAL / "search_kaos_wrapped.json").read_text())
    page = blibli.parse_search(wrapped["data"])
    assert len(page.listings) == 32 and page.listings[0].listing_id == "UMB-60239-00003"


def test_search_edges() -> None:
    none = blibli.parse_search(b"", status=422)
    assert none.block is None and none.listings == [] and not none.has_more and none.total == 0
    sugg = blibli.parse_search((EDGE / "search_no_suggestions_unwrapped.json").read_bytes(), query="bal")
    assert sugg.shape_ok and sugg.related_terms == ["bal korea", "pakaian bekas"] and not sugg.has_more
    html = blibli.parse_search((EDGE / "html_block.html").read_bytes())
    assert html.block is not None and html.block.reason == "html_instead_of_json"
    redesign = blibli.parse_search((EDGE / "redesign.json").read_bytes())
    assert not redesign.shape_ok
    bad = blibli.parse_search((FIX / "edge" / "generic" / "malformed.json").read_bytes())
    assert bad.block is not None and bad.block.reason == "malformed"


def test_detail_real_wrapped_live() -> None:
    result = blibli.parse_detail((REAL / "product_detail_wrapped.json").read_bytes())
    assert (result.verdict, result.rule) == (Verdict.LIVE, "blibli.summary_ok")
    listing = result.listing
    assert listing is not None and result.listing_id == "UM2-60023-00074"
    assert listing.title == "Lapakoe Kaos Pria" and listing.category == "T-Shirt Pria"
    assert listing.url == "https://www.blibli.com/p/lapakoe-kaos-pria/pc--MTA-4066661?ds=UM2-60023-00074"
    assert (
        listing.description.startswith("Lapakoe Kaos Pria merupakan short sleeve")
        and "<p>" not in listing.description
    )
    assert listing.seller_id == "UM2-60023"


def test_detail_removal_and_blocks() -> None:
    url = "https://www.blibli.com/backend/product-detail/products/ps--UM2-60023-00074/_summary"
    gone = blibli.parse_detail(b'{"code":404}', status=404, url=url)
    assert (gone.verdict, gone.rule, gone.listing_id) == (
        Verdict.REMOVED,
        "blibli.http_404",
        "UM2-60023-00074",
    )
    body404 = blibli.parse_detail((EDGE / "not_found_body.json").read_bytes())
    assert (body404.verdict, body404.rule) == (Verdict.REMOVED, "blibli.code_404")
    html = blibli.parse_detail((EDGE / "html_block.html").read_bytes(), url=url)
    assert (html.verdict, html.rule) == (Verdict.UNOBSERVABLE, "blibli.html_instead_of_json")
    assert blibli.parse_detail(b"", status=429).rule == "blibli.rate_limited"
    assert blibli.parse_detail(b"{").rule == "blibli.malformed"
    assert blibli.parse_detail({"code": 200, "data": {}}).verdict == Verdict.UNOBSERVABLE


def test_urls() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    url = blibli.search_url(settings, "bal korea", 3)
    assert url == (
        "http://127.0.0.1:7000/blibli/backend/search/products?searchTerm=bal+korea&page=3&start=80&channelId=web"
    )
    assert blibli.detail_request(settings, "https://www.blibli.com/p/x/ps--ABC-12345-00001").url == (
        "http://127.0.0.1:7000/blibli/backend/product-detail/products/ps--ABC-12345-00001/_summary"
    )
