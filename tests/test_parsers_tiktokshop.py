"""TikTok Shop: __MODERN_ROUTER_DATA__ product pages — status codes, not-found, region lock, captcha."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import load_settings
from crawler.errors import UsageError
from crawler.items import Verdict
from crawler.registry import default_registry
from spiders import tiktokshop

EDGE = Path(__file__).parent / "fixtures" / "edge" / "tiktokshop"
URL = "https://shop-id.tokopedia.com/pdp/bal-korea/1729384756102938475"


def test_live_product() -> None:
    result = tiktokshop.parse_detail((EDGE / "pdp_status_1.html").read_bytes(), url=URL)
    assert (result.verdict, result.rule, result.listing_id) == (
        Verdict.LIVE,
        "tiktokshop.status_live",
        "1729384756102938475",
    )
    listing = result.listing
    assert (
        listing is not None
        and listing.title == "Bal Korea Premium"
        and listing.description == "isi 300 pcs campur"
    )
    assert listing.seller_id == "7494000000000000001" and listing.seller_name == "Bal Store"
    assert listing.price == 2_500_000 and listing.sold_text == "120" and listing.url == URL


@pytest.mark.parametrize(
    ("name", "verdict", "rule"),
    [
        ("pdp_status_2.html", Verdict.REMOVED, "tiktokshop.status_deleted"),
        ("pdp_status_3.html", Verdict.REMOVED, "tiktokshop.status_banned"),
        ("pdp_status_4.html", Verdict.HIDDEN, "tiktokshop.status_under_review"),
        ("pdp_not_found.html", Verdict.REMOVED, "tiktokshop.product_not_found"),
        ("region_locked.html", Verdict.UNOBSERVABLE, "tiktokshop.region_locked"),
        ("security_check.html", Verdict.UNOBSERVABLE, "tiktokshop.security_check"),
        ("no_router.html", Verdict.UNOBSERVABLE, "tiktokshop.no_router_data"),
    ],
)
def test_signals(name: str, verdict: Verdict, rule: str) -> None:
    result = tiktokshop.parse_detail((EDGE / name).read_bytes(), url=URL)
    assert (result.verdict, result.rule, result.listing_id) == (verdict, rule, "1729384756102938475")


def test_broken_router_json_and_http_errors() -> None:
    broken = (
        '<html><body><script id="__MODERN_ROUTER_DATA__" type="application/json">{"loaderData": '
        "</script></body></html>"
    )
    assert tiktokshop.parse_detail(broken, url=URL).rule == "tiktokshop.malformed"
    assert tiktokshop.parse_detail(b"", url=URL, status=503).rule == "tiktokshop.server_error"


def test_profile_and_requests() -> None:
    assert not default_registry().profiles["tiktokshop"].has_search
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert tiktokshop.detail_request(settings, URL).url == (
        "http://127.0.0.1:7000/tiktokshop/view/product/1729384756102938475"
    )
    assert tiktokshop.detail_request(settings, "1729384756102938475").url.endswith(
        "/view/product/1729384756102938475"
    )
    with pytest.raises(UsageError):
        tiktokshop.detail_request(settings, "not-an-id")
