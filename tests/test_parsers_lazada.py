"""Lazada: ajax JSON and window.pageData search; __moduleData__/JSON-LD detail; sliders; redirects."""

from __future__ import annotations

from pathlib import Path

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import lazada

EDGE = Path(__file__).parent / "fixtures" / "edge" / "lazada"
PRODUCT_URL = "https://www.lazada.co.id/products/bal-korea-i7001-s21003.html"


def test_search_ajax_and_html_agree() -> None:
    ajax = lazada.parse_search((EDGE / "search_ajax.json").read_bytes(), query="bal")
    html = lazada.parse_search((EDGE / "search_page.html").read_bytes(), query="bal")
    for page in (ajax, html):
        assert page.shape_ok and page.total == 83 and page.has_more
        assert [item.listing_id for item in page.listings] == ["7001", "7002"]
    first, second = ajax.listings
    assert first.url == PRODUCT_URL and first.extra_ids == {"sku_id": "21003"}
    assert first.price == 2_300_000 and first.seller_name == "Lapak Bal" and first.seller_city == "Jawa Barat"
    assert first.sold_text == "1RB terjual" and not first.sponsored and second.sponsored


def test_search_edges() -> None:
    empty = lazada.parse_search((EDGE / "search_no_results.json").read_bytes())
    assert empty.shape_ok and empty.listings == [] and empty.total == 0 and not empty.has_more
    flag = lazada.parse_search((EDGE / "block_rgv587.json").read_bytes())
    assert flag.block is not None and flag.block.reason == "slider"
    slider = lazada.parse_search((EDGE / "slider.html").read_bytes())
    assert slider.block is not None and slider.block.reason == "slider"
    redesign = lazada.parse_search({"data": {"items": []}})
    assert not redesign.shape_ok


def test_detail_module_data() -> None:
    live = lazada.parse_detail((EDGE / "detail_live.html").read_bytes(), url=PRODUCT_URL)
    assert (live.verdict, live.rule, live.listing_id) == (Verdict.LIVE, "lazada.module_data", "7001")
    listing = live.listing
    assert (
        listing is not None
        and listing.title == "Bal Korea Isi 300"
        and listing.description == "Bal korea campur"
    )
    assert (
        listing.price == 2_300_000
        and listing.seller_id == "5000"
        and listing.extra_ids == {"sku_id": "21003"}
    )
    assert listing.image_url == "https://img.lazcdn.com/g/p/a.jpg"
    hidden = lazada.parse_detail((EDGE / "detail_inactive.html").read_bytes(), url=PRODUCT_URL)
    assert (hidden.verdict, hidden.rule) == (Verdict.HIDDEN, "lazada.product_inactive")


def test_detail_jsonld_and_no_data() -> None:
    ld = lazada.parse_detail((EDGE / "detail_jsonld.html").read_bytes())
    assert (
        (ld.verdict, ld.listing_id) == (Verdict.LIVE, "7002") and ld.listing and ld.listing.price == 1_900_000
    )
    blank = lazada.parse_detail((EDGE / "detail_no_data.html").read_bytes(), url=PRODUCT_URL)
    assert (blank.verdict, blank.rule) == (Verdict.UNOBSERVABLE, "lazada.no_product_data")
    slider = lazada.parse_detail((EDGE / "slider.html").read_bytes(), url=PRODUCT_URL)
    assert (slider.verdict, slider.rule) == (Verdict.UNOBSERVABLE, "lazada.slider")


def test_detail_redirects() -> None:
    off = lazada.parse_detail(b"", url=PRODUCT_URL, status=302, headers={"Location": "/catalog/?q=bal+korea"})
    assert (off.verdict, off.rule, off.listing_id) == (Verdict.REMOVED, "lazada.redirect_off_product", "7001")
    home = lazada.parse_detail(
        b"", url=PRODUCT_URL, status=301, headers={"location": "https://www.lazada.co.id/"}
    )
    assert home.verdict == Verdict.REMOVED
    punish = lazada.parse_detail(
        b"",
        url=PRODUCT_URL,
        status=302,
        headers={"Location": "https://www.lazada.co.id/_____tmd_____/punish?x"},
    )
    assert (punish.verdict, punish.rule) == (Verdict.UNOBSERVABLE, "lazada.slider")
    other = lazada.parse_detail(
        b"", url=PRODUCT_URL, status=302, headers={"Location": "/products/x-i1-s2.html"}
    )
    assert other.verdict == Verdict.UNOBSERVABLE
    assert lazada.parse_detail(b"", url=PRODUCT_URL, status=302).verdict == Verdict.UNOBSERVABLE


def test_urls() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert (
        lazada.search_url(settings, "bal korea", 2)
        == "http://127.0.0.1:7000/lazada/catalog/?ajax=true&q=bal+korea&page=2"
    )
    assert lazada.detail_request(settings, PRODUCT_URL + "?spm=1").url == (
        "http://127.0.0.1:7000/lazada/products/bal-korea-i7001-s21003.html"
    )
