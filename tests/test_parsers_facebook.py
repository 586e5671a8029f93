"""Facebook Marketplace: embedded data-sjs and GraphQL search, listing pages, login wall, removal text."""

from __future__ import annotations

from pathlib import Path

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import facebook

EDGE = Path(__file__).parent / "fixtures" / "edge" / "facebook"


def test_search_graphql_and_embedded_agree() -> None:
    gql = facebook.parse_search((EDGE / "graphql_search.json").read_bytes(), query="bal korea")
    page = facebook.parse_search((EDGE / "search_page.html").read_bytes(), query="bal korea")
    for result in (gql, page):
        assert result.shape_ok and result.has_more
        assert [item.listing_id for item in result.listings] == ["501", "502"]
    first = gql.listings[0]
    assert first.url == "https://www.facebook.com/marketplace/item/501/"
    assert first.title == "Bal Korea 300 pcs" and first.price == 2_500_000 and first.seller_city == "Batam"
    assert first.seller_id == "100077" and first.description == "bal korea isi 300, wa 0812"
    assert facebook.next_cursor((EDGE / "graphql_search.json").read_bytes()) == "CURSOR2"


def test_search_blocks_and_shape() -> None:
    wall = facebook.parse_search((EDGE / "login_wall.html").read_bytes())
    assert wall.block is not None and wall.block.reason == "login_wall" and not wall.listings
    redirect = facebook.parse_search(b"", url="https://www.facebook.com/login/?next=%2Fmarketplace")
    assert redirect.block is not None and redirect.block.reason == "login_wall"
    assert not facebook.parse_search({"data": {"viewer": {}}}).shape_ok
    assert facebook.parse_search(b"for (;;);{").block is not None


def test_detail() -> None:
    url = "https://www.facebook.com/marketplace/item/501/"
    live = facebook.parse_detail((EDGE / "item_live.html").read_bytes(), url=url)
    assert (live.verdict, live.rule, live.listing_id) == (Verdict.LIVE, "facebook.listing_json", "501")
    assert live.listing is not None and live.listing.price == 2_500_000
    gone = facebook.parse_detail((EDGE / "item_unavailable.html").read_bytes(), url=url)
    assert (gone.verdict, gone.rule, gone.listing_id) == (
        Verdict.REMOVED,
        "facebook.listing_unavailable",
        "501",
    )
    wall = facebook.parse_detail(
        b"", url=url, status=302, headers={"Location": "/login/?next=%2Fmarketplace"}
    )
    assert (wall.verdict, wall.rule) == (Verdict.UNOBSERVABLE, "facebook.login_wall")
    form = facebook.parse_detail((EDGE / "login_wall.html").read_bytes(), url=url)
    assert form.rule == "facebook.login_wall"
    blank = facebook.parse_detail(b"<html><body>hi</body></html>", url=url)
    assert blank.verdict == Verdict.UNOBSERVABLE


def test_requests() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert (
        facebook.search_url(settings, "bal korea")
        == "http://127.0.0.1:7000/facebook/marketplace/search/?query=bal+korea"
    )
    spec = facebook.graphql_search_request(settings, "bal", "C1", "123")
    assert spec.method == "POST" and spec.url == "http://127.0.0.1:7000/facebook/api/graphql/"
    assert spec.body and "doc_id=123" in spec.body and "variables=" in spec.body
