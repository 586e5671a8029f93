"""The browser-only replicas (Shopee, Facebook, Instagram) and the generated images, over real HTTP.

One sandbox server (uvicorn in a thread, loopback) per module; some listings are taken down and the clock
advanced so removal and hidden pages exist. Browser tests drive Debian's Chromium through Playwright.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import imagehash
import pytest
from PIL import Image

from crawler.config import CHROMIUM_ARGS
from sandbox.catalog import CatalogListing, generate, listing_path
from sandbox.images import image_bytes
from sandbox.platforms import facebook, instagram, shopee
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

SEARCH_Q = (
    "by=relevancy&keyword={kw}&limit=60&newest={newest}&order=desc&page_type=search"
    "&scenario=PAGE_GLOBAL_SEARCH&version=2"
)


@dataclass
class Sandbox:
    url: str
    state: SandboxState

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    state = SandboxState(generate(11, 2000), seed=3)
    # Take down a slice of each platform's listings and move the clock past every delay.
    victims = [
        x
        for p in ("shopee", "facebook", "instagram")
        for x in [y for y in state.catalog if y.platform == p][-40:]
    ]
    state.takedown([state.url_path(x) for x in victims])
    state.clock.advance(90)
    with SandboxServer(state) as url:
        yield Sandbox(url, state)


def _with_status(state: SandboxState, platform: str, status: str) -> CatalogListing:
    for listing in state.catalog:
        if listing.platform == platform and state.status(platform, listing.listing_id) == status:
            return listing
    raise AssertionError(f"no {status} listing on {platform}")


def _nonce(client: httpx.Client, keyword: str) -> str:
    page = client.get("/shopee/search", params={"keyword": keyword})
    assert page.status_code == 200
    cfg = json.loads(re.search(r'id="__SEARCH_CONFIG__">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    return str(cfg["nonce"])


# -- Shopee ---------------------------------------------------------------------------------------------
def test_shopee_unsigned_and_badly_signed_calls_are_refused(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        q = SEARCH_Q.format(kw="bal", newest=0)
        r = c.get(f"/shopee/api/v4/search/search_items?{q}")
        assert r.status_code == 200 and r.json()["error"] == shopee.ERROR_SIGNATURE
        nonce = _nonce(c, "bal")
        headers = shopee.sign(nonce, f"/api/v4/search/search_items?{q}")
        headers["x-sap-sec"] = "0" * 32
        r = c.get(f"/shopee/api/v4/search/search_items?{q}", headers=headers)
        assert r.status_code == 403 and r.json()["error"] == shopee.ERROR_SIGNATURE
        # a signature for another query does not carry over
        other = shopee.sign(nonce, "/api/v4/search/search_items?" + SEARCH_Q.format(kw="kaos", newest=0))
        r = c.get(f"/shopee/api/v4/search/search_items?{q}", headers=other)
        assert r.status_code == 403
        # anonymous detail API
        r = c.get("/shopee/api/v4/pdp/get_pc", params={"item_id": "1", "shop_id": "2"})
        assert r.json() == {"error": 1, "data": None}


def test_shopee_signed_search_returns_v4_items_and_paginates(sandbox: Sandbox) -> None:
    expected, total = sandbox.state.search("shopee", "bal", 0, 60)
    assert total > 0
    with sandbox.client() as c:
        nonce = _nonce(c, "bal")
        q = SEARCH_Q.format(kw="bal", newest=0)
        r = c.get(
            f"/shopee/api/v4/search/search_items?{q}",
            headers=shopee.sign(nonce, f"/api/v4/search/search_items?{q}"),
        )
        data = r.json()
        assert r.status_code == 200 and data["error"] is None
        assert data["total_count"] == total and data["nomore"] == (total <= 60)
        first = data["items"][0]
        basic = first["item_basic"]
        assert {"itemid", "shopid", "adsid"} <= set(first)
        assert f"{basic['shopid']}.{basic['itemid']}" == expected[0].listing_id
        assert basic["price"] == expected[0].price * 100_000 and basic["image"] == expected[0].image_seed
        assert basic["name"] == expected[0].title and basic["item_status"] == "normal"
        # the signed detail API and the listing page agree
        params = {"item_id": str(basic["itemid"]), "shop_id": str(basic["shopid"])}
        path = "/api/v4/pdp/get_pc?" + httpx.QueryParams(params).__str__()
        r = c.get("/shopee" + path, headers=shopee.sign(nonce, path))
        assert r.json()["data"]["item"]["name"] == basic["name"]
        page = c.get(f"/shopee/anything-i.{basic['shopid']}.{basic['itemid']}")
        mfe = json.loads(
            re.search(r'type="text/mfe-initial-data"[^>]*>(.*?)</script>', page.text, re.S).group(1)
        )  # type: ignore[union-attr]
        assert mfe["initialState"]["item"]["isError"] is False
        assert mfe["initialState"]["item"]["item"]["itemid"] == basic["itemid"]
        ld = json.loads(re.search(r'type="application/ld\+json">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
        assert ld["@type"] == "Product" and ld["name"] == basic["name"]
        assert c.get(f"/shopee/product/{basic['shopid']}/{basic['itemid']}").text == page.text


def test_shopee_pacing_redirects_to_verify_traffic(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        nonce = _nonce(c, "kaos")
        q = SEARCH_Q.format(kw="kaos", newest=0)
        path = f"/api/v4/search/search_items?{q}"
        codes = [c.get("/shopee" + path, headers=shopee.sign(nonce, path)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        r = c.get("/shopee" + path, headers=shopee.sign(nonce, path))
        assert r.status_code == 302 and r.headers["location"].endswith("/shopee/verify/traffic")
        assert 'data-verify="traffic"' in c.get(r.headers["location"]).text


def test_shopee_removed_hidden_and_block_fault(sandbox: Sandbox) -> None:
    state = sandbox.state
    removed = _with_status(state, "shopee", "REMOVED")
    hidden = _with_status(state, "shopee", "HIDDEN")
    with sandbox.client() as c:
        host, path = listing_path(removed)
        text = c.get(f"/{host}{path}").text
        mfe = json.loads(re.search(r'mfe-initial-data"[^>]*>(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
        item = mfe["initialState"]["item"]
        assert (item["isError"], item["error"]) == (True, 266900002) or item["item"][
            "item_status"
        ] == "banned"
        host, path = listing_path(hidden)
        text = c.get(f"/{host}{path}").text
        mfe = json.loads(re.search(r'mfe-initial-data"[^>]*>(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
        assert mfe["initialState"]["item"]["item"]["item_status"] == "unlisted"
        assert "ld+json" not in text
        state.force_faults("shopee", ["block_page"])
        r = c.get("/shopee/search", params={"keyword": "bal"})
        assert r.status_code == 302 and r.headers["location"].endswith("/shopee/verify/captcha")


def test_shopee_signature_matches_the_page_script(sandbox: Sandbox) -> None:
    # The JS in the page and the Python signer must agree: same FNV constants and round structure.
    assert shopee.fnv1a("") == 0x811C9DC5 and shopee.fnv1a("a") == 0xE40C292C
    assert len(shopee.sap_hash("k", "m")) == 32 and shopee.sap_hash("k", "m") != shopee.sap_hash("k", "n")
    with sandbox.client() as c:
        assert "sapHash(nonce + ri, pathAndQuery)" in c.get("/shopee/search?keyword=x").text


# -- Facebook -------------------------------------------------------------------------------------------
def _fb_login(c: httpx.Client) -> None:
    r = c.post(
        "/facebook/login/",
        data={"email": facebook.ACCOUNT[0], "pass": facebook.ACCOUNT[1], "next": "/marketplace/"},
    )
    assert r.status_code == 302 and {"c_user", "xs"} <= set(c.cookies.keys())


def test_facebook_login_wall_and_cookies(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        r = c.get("/facebook/marketplace/search/", params={"query": "bal"})
        assert r.status_code == 302
        assert r.headers["location"] == "/facebook/login/?next=" + quote(
            "/marketplace/search/?query=bal", safe=""
        )
        assert c.post("/facebook/api/graphql/", data={"doc_id": facebook.SEARCH_DOC_ID}).status_code == 302
        r = c.post("/facebook/login/", data={"email": facebook.ACCOUNT[0], "pass": "wrong"})
        assert r.status_code == 200 and "incorrect" in r.text and "xs" not in c.cookies
        c.cookies.set("c_user", facebook.ANALYST_USER_ID)
        c.cookies.set("xs", "forged")
        assert c.get("/facebook/marketplace/").status_code == 302
        c.cookies.clear()
        _fb_login(c)
        assert c.get("/facebook/marketplace/").status_code == 200


def test_facebook_search_embeds_first_page_and_graphql_paginates(sandbox: Sandbox) -> None:
    _, total = sandbox.state.search("facebook", "bal", 0, 1)
    assert total > facebook.PAGE_SIZE, total
    with sandbox.client() as c:
        _fb_login(c)
        page = c.get("/facebook/marketplace/search/", params={"query": "bal"})
        blob = re.search(r"<script type=\"application/json\" data-sjs>(.*?)</script>", page.text, re.S)
        first = json.loads(blob.group(1))["data"]["marketplace_search"]["feed_units"]  # type: ignore[union-attr]
        assert len(first["edges"]) == facebook.PAGE_SIZE and first["page_info"]["has_next_page"]
        assert page.text.count('class="mp-card"') == facebook.PAGE_SIZE
        seen = [e["node"]["listing"]["id"] for e in first["edges"]]
        cursor = first["page_info"]["end_cursor"]
        while cursor:
            variables = json.dumps({"query": "bal", "cursor": cursor, "count": facebook.PAGE_SIZE})
            r = c.post(
                "/facebook/api/graphql/", data={"variables": variables, "doc_id": facebook.SEARCH_DOC_ID}
            )
            units = r.json()["data"]["marketplace_search"]["feed_units"]
            seen += [e["node"]["listing"]["id"] for e in units["edges"]]
            cursor = units["page_info"]["end_cursor"]
        assert len(seen) == len(set(seen)) == total
        listing = first["edges"][0]["node"]["listing"]
        assert {
            "marketplace_listing_title",
            "listing_price",
            "marketplace_listing_seller",
            "location",
        } <= set(listing)
        bad = c.post("/facebook/api/graphql/", data={"variables": "{}", "doc_id": "1"}).json()
        assert "errors" in bad


def test_facebook_listing_and_removed_pages(sandbox: Sandbox) -> None:
    live = _with_status(sandbox.state, "facebook", "LIVE")
    removed = _with_status(sandbox.state, "facebook", "REMOVED")
    with sandbox.client() as c:
        _fb_login(c)
        page = c.get(f"/facebook/marketplace/item/{live.listing_id}/")
        assert page.status_code == 200 and 'property="og:title" content="' in page.text
        data = json.loads(re.search(r"data-sjs>(.*?)</script>", page.text, re.S).group(1))  # type: ignore[union-attr]
        assert data["data"]["marketplace_product_details_page"]["target"]["id"] == live.listing_id
        gone = c.get(f"/facebook/marketplace/item/{removed.listing_id}/")
        assert (
            gone.status_code == 200 and facebook.UNAVAILABLE_TEXT in gone.text and "data-sjs" not in gone.text
        )


# -- Instagram ------------------------------------------------------------------------------------------
def test_instagram_hashtag_matching_rules() -> None:
    assert instagram.matches_tag("Bal Korea isi 300 pcs", "balkorea")
    assert instagram.matches_tag("ready stok #thriftbandung", "thriftbandung")
    assert not instagram.matches_tag("Kaos polos baru", "balkorea")
    assert instagram.normalise_tag("%23Bal%20Korea") == "balkorea"


def test_instagram_login_wall_sections_and_post_pages(sandbox: Sandbox) -> None:
    state = sandbox.state
    tag = "bal"
    ig = instagram.InstagramReplica(state)
    expected = [x.listing_id for x in ig.tag_matches(tag)]
    assert len(expected) > instagram.PAGE_SIZE
    with sandbox.client() as c:
        r = c.get(f"/instagram/explore/tags/{tag}/")
        assert r.status_code == 302 and r.headers["location"].startswith("/instagram/accounts/login/?next=")
        assert c.get(f"/instagram/api/v1/tags/{tag}/sections/").status_code == 302
        bad = c.post(
            "/instagram/accounts/login/ajax/", data={"username": instagram.ACCOUNT[0], "password": "x"}
        )
        assert bad.json()["authenticated"] is False and "sessionid" not in c.cookies
        ok = c.post(
            "/instagram/accounts/login/ajax/",
            data=dict(zip(("username", "password"), instagram.ACCOUNT, strict=True)),
        )
        assert ok.json()["authenticated"] is True and "sessionid" in c.cookies
        page = c.get(f"/instagram/explore/tags/{tag}/")
        assert page.status_code == 200
        first = json.loads(re.search(r'id="tag-sections-initial">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
        codes = [m["media"]["code"] for s in first["sections"] for m in s["layout_content"]["medias"]]
        max_id = first["next_max_id"]
        while max_id:
            data = c.get(f"/instagram/api/v1/tags/{tag}/sections/", params={"max_id": max_id}).json()
            codes += [m["media"]["code"] for s in data["sections"] for m in s["layout_content"]["medias"]]
            max_id = data["next_max_id"] if data["more_available"] else None
        assert codes == expected
        media = first["sections"][0]["layout_content"]["medias"][0]["media"]
        assert {"code", "pk", "caption", "user", "image_versions2"} <= set(media)
        # post pages are public (link-preview clients); removed posts 404
        c.cookies.clear()
        post = c.get(f"/instagram/p/{media['code']}/")
        assert post.status_code == 200 and 'property="og:description"' in post.text
        removed = _with_status(state, "instagram", "REMOVED")
        gone = c.get(f"/instagram/p/{removed.listing_id}/")
        assert gone.status_code == 404 and instagram.NOT_AVAILABLE in gone.text


# -- images ---------------------------------------------------------------------------------------------
def _phash(seed: str) -> imagehash.ImageHash:
    return imagehash.phash(Image.open(io.BytesIO(image_bytes(seed))))


def test_images_deterministic_and_relist_variants_close() -> None:
    seeds = [f"{i * 7919:016x}" for i in range(1, 41)]
    hashes = {s: _phash(s) for s in seeds}
    unrelated = [hashes[a] - hashes[b] for a, b in itertools.combinations(seeds, 2)]
    unrelated.sort()
    assert unrelated[len(unrelated) // 2] >= 20  # median distance of unrelated pictures
    assert sum(d < 12 for d in unrelated) / len(unrelated) < 0.02
    variants = [hashes[s] - _phash(f"{s}~{v}") for s in seeds[:15] for v in (1, 5)]
    assert max(variants) <= 10
    assert image_bytes(f"{seeds[0]}~1") != image_bytes(seeds[0])
    img = Image.open(io.BytesIO(image_bytes(seeds[0])))
    assert img.format == "JPEG" and img.size == (600, 600)
    with pytest.raises(ValueError):
        image_bytes("../etc")


def test_images_served_under_every_browser_host(sandbox: Sandbox) -> None:
    seed = sandbox.state.catalog[0].image_seed
    with sandbox.client() as c:
        for host in ("shopee", "facebook", "instagram"):
            r = c.get(f"/{host}/img/{seed}.jpg")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert r.content == image_bytes(seed)
        assert c.get(f"/shopee/img/{seed}~3.jpg").content == image_bytes(f"{seed}~3")
        assert c.get("/shopee/img/not!valid.jpg").status_code == 404


# -- real Chromium ----------------------------------------------------------------------------------------
def _chromium() -> str:
    from crawler.config import load_settings

    path = load_settings().chromium_path()
    if not path:
        pytest.skip("no Chromium on this machine")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), args=list(CHROMIUM_ARGS), headless=True)
        yield b
        b.close()


@pytest.mark.browser
@pytest.mark.timeout(30)
def test_browser_shopee_page_signs_its_own_api_call(sandbox: Sandbox, browser: object) -> None:
    _, total = sandbox.state.search("shopee", "bal", 0, 1)
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    with page.expect_response(lambda r: "/api/v4/search/search_items" in r.url, timeout=10_000) as info:
        page.goto(f"{sandbox.url}/shopee/search?keyword=bal&page=0")
    response = info.value
    data = response.json()
    assert response.status == 200 and data["error"] is None and data["total_count"] == total
    assert response.request.headers["x-sap-sec"] and "newest=0" in response.url
    page.wait_for_selector('.shopee-search-status[data-state="done"]', timeout=5_000)
    assert page.locator('[data-sqe="item"]').count() == len(data["items"])
    context.close()


@pytest.mark.browser
@pytest.mark.timeout(30)
def test_browser_facebook_login_and_scroll_loads_second_page(sandbox: Sandbox, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{sandbox.url}/facebook/marketplace/search/?query=bal")
    assert "/facebook/login/" in page.url
    page.fill("#email", facebook.ACCOUNT[0])
    page.fill("#pass", facebook.ACCOUNT[1])
    page.click("#loginbutton")
    page.wait_for_selector(".mp-card", timeout=5_000)
    assert "/marketplace/search/" in page.url
    assert page.locator(".mp-card").count() == facebook.PAGE_SIZE
    with page.expect_response(lambda r: r.url.endswith("/api/graphql/"), timeout=10_000) as info:
        page.mouse.wheel(0, 20_000)
    assert info.value.json()["data"]["marketplace_search"]["feed_units"]["edges"]
    page.wait_for_function(
        f"document.querySelectorAll('.mp-card').length > {facebook.PAGE_SIZE}", timeout=5_000
    )
    context.close()
