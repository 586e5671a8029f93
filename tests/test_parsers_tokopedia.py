"""Tokopedia: SearchProductV5 (+ legacy V4) search and PDPGetLayout detail, on real and hand-made bodies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from crawler.config import load_settings
from crawler.errors import UsageError
from crawler.items import Verdict
from spiders import tokopedia

FIX = Path(__file__).parent / "fixtures"
REAL = FIX / "real" / "tokopedia"
EDGE = FIX / "edge" / "tokopedia"


def test_search_v5_listings() -> None:
    page = tokopedia.parse_search((EDGE / "search_v5.json").read_bytes(), query="bal", page=2, url="u")
    assert page.shape_ok and page.block is None and not page.query_blocked
    assert page.total == 123
    assert page.has_more  # 60 + 3 seen < 123
    assert [item.listing_id for item in page.listings] == ["111", "222", "333"]
    first, ad = page.listings[0], page.listings[1]
    assert first.url == "https://www.tokopedia.com/tokobal/bal-korea-isi-300"  # tracking query stripped
    assert first.price == 2_500_000 and first.seller_id == "9001" and first.seller_city == "Kota Bandung"
    assert first.sold_text == "250+ terjual" and not first.sponsored
    assert (first.rank, first.page, first.query, first.source_url) == (1, 2, "bal", "u")
    assert ad.sponsored and ad.rank == 2
    assert ad.extra_ids["tiktokshop_product_id"] == "7301234567890123456"
    assert ad.extra_ids["tiktokshop_seller_id"] == "7494000000000000001"
    assert "tiktokshop_product_id" not in first.extra_ids
    assert page.related_terms == ["bal korea", "karungan", "karungan import"]


def test_search_query_blocked_is_a_finding() -> None:
    page = tokopedia.parse_search(
        (EDGE / "search_v5_query_blocked.json").read_bytes(), query="baju bekas impor"
    )
    assert page.query_blocked and page.shape_ok and not page.listings and not page.has_more
    assert "tidak dapat ditampilkan" in page.query_blocked_detail


def test_search_empty_and_legacy_and_redesign() -> None:
    empty = tokopedia.parse_search((EDGE / "search_v5_empty.json").read_bytes())
    assert empty.shape_ok and empty.listings == [] and not empty.has_more and empty.total == 0
    legacy = tokopedia.parse_search((EDGE / "search_v4_legacy.json").read_bytes())
    assert legacy.shape_ok and legacy.listings[0].listing_id == "444"
    assert legacy.listings[0].price == 1_250_000 and legacy.listings[0].seller_city == "Jakarta Utara"
    redesign = tokopedia.parse_search((EDGE / "redesign.json").read_bytes())
    assert not redesign.shape_ok and redesign.block is None


def test_search_blocks() -> None:
    akamai = tokopedia.parse_search((EDGE / "akamai_denied.html").read_bytes())
    assert akamai.block is not None and akamai.block.reason == "akamai" and not akamai.listings
    bad = tokopedia.parse_search((FIX / "edge" / "generic" / "malformed.json").read_bytes())
    assert bad.block is not None and bad.block.reason == "malformed"
    limited = tokopedia.parse_search((EDGE / "search_v5.json").read_bytes(), status=429)
    assert limited.block is not None and limited.block.reason == "rate_limited" and not limited.listings


def test_detail_real_pdp_layout_is_live() -> None:
    result = tokopedia.parse_detail((REAL / "pdp_get_layout.json").read_bytes())
    assert (result.verdict, result.rule, result.signal) == (Verdict.LIVE, "tokopedia.status_active", "ACTIVE")
    listing = result.listing
    assert listing is not None and result.listing_id == "525027826"
    assert listing.url == "https://www.tokopedia.com/hoodiecenter/jaket-zipper-hoodie-mocca-m"
    assert listing.title == "Jaket Zipper Hoodie Mocca - M"
    assert listing.price == 66_900
    assert (listing.seller_id, listing.seller_name) == ("389824", "Hoodie Center")
    assert listing.shop_url == "https://www.tokopedia.com/hoodiecenter"
    assert listing.condition == "NEW" and listing.sold_text == "80+" and listing.category == "Hoodie  Pria"
    assert listing.description.startswith("***HARAP DI BACA SAMPAI SELESAI***")
    assert listing.image_url and listing.image_url.endswith("cc4_1000_1000")


def _with_status(status: str) -> dict:
    data = json.loads((REAL / "pdp_get_layout.json").read_text())
    data["basicInfo"]["status"] = status
    return {"data": {"pdpGetLayout": data}}  # also the wrapped shape


@pytest.mark.parametrize(
    ("status", "verdict", "rule"),
    [
        ("BANNED", Verdict.REMOVED, "tokopedia.status_banned"),
        ("DELETED", Verdict.REMOVED, "tokopedia.status_deleted"),
        ("WAREHOUSE", Verdict.HIDDEN, "tokopedia.status_warehouse"),
        ("HIDDEN", Verdict.HIDDEN, "tokopedia.status_hidden"),
        ("PENDING_REVIEW", Verdict.UNOBSERVABLE, "tokopedia.status_unrecognised"),
    ],
)
def test_detail_status_rules(status: str, verdict: Verdict, rule: str) -> None:
    result = tokopedia.parse_detail(_with_status(status))
    assert (result.verdict, result.rule, result.signal) == (verdict, rule, status)
    assert result.listing_id == "525027826"


def test_detail_gql_errors_and_blocks() -> None:
    removed = tokopedia.parse_detail((EDGE / "gql_error_2001.json").read_bytes())
    assert (removed.verdict, removed.rule) == (Verdict.REMOVED, "tokopedia.gql_error_2001")
    other = tokopedia.parse_detail((EDGE / "gql_error_other.json").read_bytes())
    assert (other.verdict, other.rule) == (Verdict.UNOBSERVABLE, "tokopedia.gql_error")
    akamai = tokopedia.parse_detail((EDGE / "akamai_denied.html").read_bytes())
    assert (akamai.verdict, akamai.rule) == (Verdict.UNOBSERVABLE, "tokopedia.akamai")
    bad = tokopedia.parse_detail(b"[{")
    assert (bad.verdict, bad.rule) == (Verdict.UNOBSERVABLE, "tokopedia.malformed")
    server = tokopedia.parse_detail(b"", status=502)
    assert (server.verdict, server.rule) == (Verdict.UNOBSERVABLE, "tokopedia.server_error")


def test_request_builders() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:8123")
    url, method, headers, body = tokopedia.search_request(settings, "bal korea", 3, unique_id="f" * 32)
    assert url == "http://127.0.0.1:8123/tokopedia-gql/graphql/SearchProductV5Query" and method == "POST"
    assert headers["x-source"] == "tokopedia-lite" and headers["origin"] == "http://127.0.0.1:8123/tokopedia"
    payload = json.loads(body or "")
    assert isinstance(payload, list) and payload[0]["operationName"] == "SearchProductV5Query"
    params = parse_qs(payload[0]["variables"]["params"])
    assert params["q"] == ["bal korea"] and params["page"] == ["3"] and params["rows"] == ["60"]
    assert params["start"] == ["120"] and params["safe_search"] == ["false"] and params["st"] == ["product"]
    assert len(params["unique_id"][0]) == 32
    detail = tokopedia.detail_request(settings, "https://www.tokopedia.com/hoodiecenter/jaket-zipper?x=1")
    variables = json.loads(detail.body or "")[0]["variables"]
    assert (variables["shopDomain"], variables["productKey"]) == ("hoodiecenter", "jaket-zipper")
    with pytest.raises(UsageError):
        tokopedia.detail_request(settings, "525027826")
