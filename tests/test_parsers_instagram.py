"""Instagram: hashtag sections, post pages (OG tags), 404 removal, login redirects."""

from __future__ import annotations

from pathlib import Path

from crawler.config import load_settings
from crawler.items import Verdict
from spiders import instagram

EDGE = Path(__file__).parent / "fixtures" / "edge" / "instagram"


def test_sections_search() -> None:
    body = (EDGE / "tag_sections.json").read_bytes()
    page = instagram.parse_search(body, query="#bal korea")
    assert page.shape_ok and page.has_more
    assert [item.listing_id for item in page.listings] == ["Cx1AbC", "Cx2DeF"]  # duplicates dropped
    first = page.listings[0]
    assert first.url == "https://www.instagram.com/p/Cx1AbC/" and first.title == "Bal korea ready!"
    assert first.price == 2_500_000 and first.seller_name == "thrift.batam" and first.seller_id == "4455"
    assert page.listings[1].price is None
    assert instagram.next_max_id(body) == "QVFE"
    embedded = f'<html><body><script type="application/json">{body.decode()}</script></body></html>'
    assert [item.listing_id for item in instagram.parse_search(embedded).listings] == ["Cx1AbC", "Cx2DeF"]


def test_search_blocks_and_shape() -> None:
    login = instagram.parse_search(b"", url="https://www.instagram.com/accounts/login/?next=/explore/")
    assert login.block is not None and login.block.reason == "login_wall"
    assert not instagram.parse_search({"status": "ok"}).shape_ok
    assert instagram.parse_search(b"{").block is not None


def test_post_detail() -> None:
    url = "https://www.instagram.com/p/Cx1AbC/"
    live = instagram.parse_detail((EDGE / "post_live.html").read_bytes(), url=url)
    assert (live.verdict, live.rule, live.listing_id) == (Verdict.LIVE, "instagram.og_tags", "Cx1AbC")
    assert live.listing is not None and live.listing.price == 150_000
    assert live.listing.description == "Bal korea ready! Harga Rp 150rb per kg"
    gone = instagram.parse_detail((EDGE / "post_not_available.html").read_bytes(), url=url, status=404)
    assert (gone.verdict, gone.rule) == (Verdict.REMOVED, "instagram.http_404")
    # the same text on a 200 page is not a removal signal
    soft = instagram.parse_detail((EDGE / "post_not_available.html").read_bytes(), url=url)
    assert soft.verdict == Verdict.UNOBSERVABLE
    wall = instagram.parse_detail(b"", url=url, status=302, headers={"Location": "/accounts/login/"})
    assert (wall.verdict, wall.rule) == (Verdict.UNOBSERVABLE, "instagram.login_wall")


def test_requests() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:7000")
    assert (
        instagram.search_request(settings, "#Bal Korea").url
        == "http://127.0.0.1:7000/instagram/explore/tags/balkorea/"
    )
    assert instagram.sections_url(settings, "bal", "X1").endswith(
        "/instagram/api/v1/tags/bal/sections/?max_id=X1"
    )
    assert instagram.detail_request(settings, "Cx1AbC").url == "http://127.0.0.1:7000/instagram/p/Cx1AbC/"
