"""Shopee: v2 flat (real) and v4 item_basic search, item/get (real), mfe-initial-data pages, blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import shopee

FIX = Path(__file__).parent / "fixtures"
REAL = FIX / "real" / "shopee"
EDGE = FIX / "edge" / "shopee"


def test_search_real_v2_flat() -> None:
    page = shopee.parse_search((REAL / "search_items_kaos.json").read_bytes(), query="kaos")
    assert page.shape_ok and page.block is None
    assert page.total == 9_484_967 and page.has_more and len(page.listings) == 50
    first = page.listings[0]
    assert first.listing_id == "87759532.5424151845"
    assert first.title.startswith("PREMIUM !!! Kaos Sunda DYHOPE")
    assert first.price == 85_000  # 8500000000 / 100000
    assert first.seller_city == "KAB. BANDUNG" and first.seller_id == "87759532"
    assert first.image_url == "https://down-id.img.susercontent.com/file/0fe3f7f18134ceeb9664285c4fc0d7cc"
    assert first.url.endswith("-i.87759532.5424151845") and first.url.startswith("https://shopee.co.id/")
    assert first.status == "normal" and not first.sponsored and first.rank == 1
    assert page.listings[-1].rank == 50 and page.listings[-1].listing_id == "22867472.4515650414"


def test_search_v4_item_basic_and_related_terms() -> None:
    url = "http://127.0.0.1:9/shopee/api/v4/search/search_items?keyword=bal"
    page = shopee.parse_search((EDGE / "search_v4_item_basic.json").read_bytes(), url=url, query="bal")
    assert [item.listing_id for item in page.listings] == ["77.900", "78.901"]
    ad, plain = page.listings
    assert (
        ad.sponsored
        and ad.price == 2_500_000
        and ad.url == "http://127.0.0.1:9/shopee/Bal-Korea-Premium-i.77.900"
    )
    assert plain.image_url == "http://127.0.0.1:9/shopee/img/7.jpg"  # absolute images kept
    assert not page.has_more  # nomore
    assert page.related_terms == ["baju bekas import", "bal korea"]


def test_search_empty_and_blocks() -> None:
    empty = shopee.parse_search((EDGE / "search_empty_null_items.json").read_bytes())
    assert empty.shape_ok and empty.listings == [] and empty.total == 0 and not empty.has_more
    sig = shopee.parse_search((EDGE / "block_90309999.json").read_bytes())
    assert sig.block is not None and sig.block.reason == "signature" and not sig.listings
    err1 = shopee.parse_search((EDGE / "block_error1.json").read_bytes())
    assert err1.block is not None and err1.block.reason == "error_1"
    verify = shopee.parse_search(b"<html><body>x</body></html>", url="https://shopee.co.id/verify/traffic?x")
    assert verify.block is not None and verify.block.reason == "captcha"
    wrong = shopee.parse_search((FIX / "real" / "blibli" / "product_detail_wrapped.json").read_bytes())
    assert not wrong.shape_ok


def test_detail_real_item_get() -> None:
    result = shopee.parse_detail((REAL / "item_get_detail.json").read_bytes())
    assert (result.verdict, result.rule, result.signal) == (Verdict.LIVE, "shopee.api_item", "normal")
    listing = result.listing
    assert listing is not None and result.listing_id == "18300679.1636649723"
    assert listing.title.startswith("LAPTOP SEKEN SEJUTAAN")
    assert listing.price == 1_325_000 and listing.condition == "USED"
    assert listing.seller_city == "KOTA JAKARTA BARAT" and listing.sold_text == "1167"
    assert listing.description.startswith("ISI PAKET")


def test_detail_mfe_pages() -> None:
    url = "https://shopee.co.id/Bal-Campur-i.18300679.1636649723"
    live = shopee.parse_detail((EDGE / "mfe_live.html").read_bytes(), url=url)
    assert live.verdict == Verdict.LIVE and live.listing is not None
    assert live.listing.price == 1_500_000 and live.listing.description == "isi 300 pcs"
    removed = shopee.parse_detail((EDGE / "mfe_removed_266900002.html").read_bytes(), url=url)
    assert (removed.verdict, removed.rule, removed.listing_id) == (
        Verdict.REMOVED,
        "shopee.mfe_error_266900002",
        "18300679.1636649723",
    )
    hidden = shopee.parse_detail((EDGE / "mfe_unlisted.html").read_bytes())
    assert (hidden.verdict, hidden.rule) == (Verdict.HIDDEN, "shopee.item_status_unlisted")
    banned = shopee.parse_detail((EDGE / "mfe_banned.html").read_bytes())
    assert (banned.verdict, banned.rule) == (Verdict.REMOVED, "shopee.item_status_banned")
    shell = shopee.parse_detail((EDGE / "shell_without_data.html").read_bytes(), url=url)
    assert (shell.verdict, shell.rule) == (Verdict.UNOBSERVABLE, "shopee.no_item_data")


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"status": 302, "headers": {"Location": "https://shopee.co.id/verify/traffic"}}, "shopee.captcha"),
        ({"status": 302, "headers": {b"Location": [b"/buyer/login?next=x"]}}, "shopee.login_wall"),
        ({"url": "https://shopee.co.id/verify/captcha?r=1"}, "shopee.captcha"),
        ({"status": 429}, "shopee.rate_limited"),
    ],
)
def test_detail_blocks_are_unobservable(kwargs: dict, rule: str) -> None:
    result = shopee.parse_detail(b"", **kwargs)
    assert (result.verdict, result.rule) == (Verdict.UNOBSERVABLE, rule)


def test_detail_api_errors() -> None:
    assert shopee.parse_detail({"error": 266900002}).rule == "shopee.api_error_266900002"
    assert shopee.parse_detail({"error": 90309999}).verdict == Verdict.UNOBSERVABLE
    assert shopee.parse_detail(b"{oops").rule == "shopee.malformed"


def test_urls() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert (
        shopee.search_page_url(settings, "bal korea", 1)
        == "http://127.0.0.1:7000/shopee/search?keyword=bal+korea&page=0"
    )
    api = shopee.search_api_url(settings, "bal", 3)
    assert api.startswith("http://127.0.0.1:7000/shopee/api/v4/search/search_items?") and "newest=120" in api
    assert (
        shopee.detail_request(settings, "https://shopee.co.id/X-i.5.6").url
        == "http://127.0.0.1:7000/shopee/X-i.5.6"
    )
    assert shopee.detail_request(settings, "5.6").url == "http://127.0.0.1:7000/shopee/product/5/6"
    assert shopee.listing_id_from_url("https://shopee.co.id/product/5/6") == "5.6"
