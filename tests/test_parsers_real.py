"""The parsers on real captured answers (tests/fixtures/real/, provenance in PROVENANCE.md): the facts each
body carries — seller ids, sponsored flags, a platform-blocked keyword, a profile's posts, where an item
ships from — and what a renamed path looks like (a shape change naming the missing path)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from spiders import blibli, facebook, instagram, shopee, tokopedia

REAL = Path(__file__).parent / "fixtures" / "real"


def _load(path: str) -> Any:
    return json.loads((REAL / path).read_text(encoding="utf-8"))


# -- Tokopedia: the web query SearchProductQueryV4 (aliases shop.shopId, ads.adsId, data.isQuerySafe) ------
def _tokopedia_v4() -> dict[str, Any]:
    """The real ``ace_search_product_v4`` body, put back where the GraphQL answer carries it."""
    return {
        "data": {
            "ace_search_product_v4": _load("tokopedia/search_v4_iphone_rapidapi_wrapped.json")["results"]
        }
    }


def test_tokopedia_v4_real_answer_gives_seller_ids() -> None:
    page = tokopedia.parse_search([_tokopedia_v4()], query="iphone", page=1, url="u")
    assert page.shape == "ace_search_product_v4" and page.shape_ok and page.missing_paths == []
    assert page.block is None and not page.query_blocked and page.total == 196238 and page.has_more
    (item,) = page.listings
    assert item.listing_id == "2783580239"
    assert item.seller_id == "1086539"  # shop.shopId: lost when the parser read only shop.id
    assert (item.seller_name, item.seller_city) == ("GoodPonsel", "Surabaya")
    assert item.shop_url == "https://www.tokopedia.com/goodponsel"
    assert item.url == (
        "https://www.tokopedia.com/goodponsel/"
        "new-apple-iphone-11-64gb-128gb-256gb-garansi-resmi-ibox-tam-gdn-11-ibox-64gb-5ec72"
    )
    assert item.price == 6_999_000 and item.sold_text == "100+ terjual"
    assert item.category == "Handphone & Tablet" and item.raw["badges"] == ["Official Store"]
    assert item.sponsored is False and item.raw["ads_id"] is None  # ads.adsId is "" on this organic result
    assert item.ships_from_abroad is None  # Surabaya: the answer says nothing about abroad


def test_tokopedia_v4_ads_id_alias_marks_sponsored() -> None:
    body = _tokopedia_v4()
    product = body["data"]["ace_search_product_v4"]["data"]["products"][0]
    product["ads"]["adsId"] = "149871236"
    (item,) = tokopedia.parse_search(body).listings
    assert item.sponsored is True and item.raw["ads_id"] == "149871236"


def test_tokopedia_v4_query_safe_under_data_is_the_blocked_query_finding() -> None:
    body = _tokopedia_v4()
    inner = body["data"]["ace_search_product_v4"]["data"]
    inner["isQuerySafe"] = False
    inner["products"] = []
    inner["violation"]["headerText"] = "Hasil pencarian tidak dapat ditampilkan"
    inner["violation"]["descriptionText"] = "Kata kunci ini melanggar ketentuan"
    page = tokopedia.parse_search(body, query="baju bekas impor")
    assert page.query_blocked and page.shape_ok and not page.listings and not page.has_more
    assert (
        page.query_blocked_detail
        == "Hasil pencarian tidak dapat ditampilkan — Kata kunci ini melanggar ketentuan"
    )


def test_tokopedia_v4_renamed_seller_id_is_a_shape_change() -> None:
    body = _tokopedia_v4()
    shop = body["data"]["ace_search_product_v4"]["data"]["products"][0]["shop"]
    shop["sellerKey"] = shop.pop("shopId")
    page = tokopedia.parse_search(body)
    assert not page.shape_ok and page.block is None
    assert page.missing_paths == ["data.ace_search_product_v4.data.products[].shop.shopId|shop.id"]
    assert tokopedia.SWEEP_SEARCH_SHAPE == "searchProductV5"  # what the sweep itself sends


# -- Shopee: ships from abroad ------------------------------------------------------------------------
def test_shopee_real_cross_border_item_ships_from_abroad() -> None:
    page = shopee.parse_search((REAL / "shopee/search_items_kaos.json").read_bytes(), query="kaos")
    assert page.shape_ok and len(page.listings) == 50
    abroad = [item for item in page.listings if item.ships_from_abroad]
    assert [item.listing_id for item in abroad] == ["70515557.2237667952"]
    assert abroad[0].origin_facts == ['shopee shop_location="Luar Negeri"', "shopee cb_option=1"]
    assert abroad[0].seller_city == "Luar Negeri"
    domestic = [item for item in page.listings if item.ships_from_abroad is False]
    assert len(domestic) == 49 and all(not item.origin_facts for item in domestic)


def test_shopee_real_detail_is_domestic() -> None:
    result = shopee.parse_detail((REAL / "shopee/item_get_detail.json").read_bytes())
    assert result.listing is not None and result.listing.ships_from_abroad is False


# -- Blibli: sponsored products, and the root category that is not a category ---------------------------
def test_blibli_real_sponsor_products_are_sponsored_listings() -> None:
    page = blibli.parse_search((REAL / "blibli/category_sponsored_excerpt.json").read_bytes(), page=1)
    assert page.shape_ok and page.missing_paths == [] and page.total == 126419
    organic = [item for item in page.listings if not item.sponsored]
    ads = [item for item in page.listings if item.sponsored]
    assert [item.listing_id for item in organic] == ["BLP-60058-00011", "ALI-60051-01794"]
    assert [item.listing_id for item in ads] == [
        "BLI-60048-00074",
        "ABS-60107-00117",
        "SUS-70508-00020",
        "VIU-70015-00002",
    ]
    first = ads[0]
    assert first.title == "Enfamama A+ Cokelat Susu Ibu Hamil & Menyusui [400 g]"
    assert (first.seller_id, first.seller_city, first.price) == ("BLI-60048", "Kota Bekasi", 115_100)
    assert first.extra_ids == {"item_sku": "BLI-60048-00074-00001"}
    assert first.url == "https://www.blibli.com/p/item-name/is--BLI-60048-00074-00001"  # no click tracker
    assert blibli.listing_id_from_url(first.url) == "BLI-60048-00074"
    assert [item.raw["ad_rank"] for item in ads] == [1, 2, 3, 8]
    assert [item.rank for item in page.listings] == [1, 2, 3, 4, 5, 6]


def test_blibli_root_category_is_not_the_product_category() -> None:
    # baby formula under "Blibli Hasanah - Muslim Corner", t-shirts under "Kesehatan & Kecantikan"
    roots_seen = {
        "blibli/category_sponsored_excerpt.json": {"Blibli Hasanah - Muslim Corner"},
        "blibli/search_kaos_wrapped.json": {"Galeri Indonesia", "Kesehatan & Kecantikan"},
    }
    for path, roots in roots_seen.items():
        page = blibli.parse_search((REAL / path).read_bytes())
        assert {item.raw.get("root_category") for item in page.listings if not item.sponsored} == roots
        assert all(item.category is None for item in page.listings)
    with_hierarchy = copy.deepcopy(_load("blibli/category_sponsored_excerpt.json"))
    with_hierarchy["data"]["products"][0]["categoryNameHierarchy"] = ["Ibu & Anak", "Susu Formula"]
    assert blibli.parse_search(with_hierarchy).listings[0].category == "Susu Formula"


def test_blibli_renamed_sponsor_sku_is_a_shape_change() -> None:
    body = _load("blibli/category_sponsored_excerpt.json")
    for ad in body["data"]["sponsorProducts"]:
        ad["itemSkuId"] = ad.pop("skuId")
    page = blibli.parse_search(body)
    assert not page.shape_ok and page.missing_paths == ["data.sponsorProducts[].skuId"]
    assert len(page.listings) == 2  # the organic products still read


# -- Instagram: a seller's profile --------------------------------------------------------------------
def test_instagram_web_profile_info_gives_the_accounts_posts() -> None:
    body = (REAL / "instagram/web_profile_info_excerpt.json").read_bytes()
    for page in (instagram.parse_profile(body, query="@adrianhorning"), instagram.parse_search(body)):
        assert page.shape == "profile" and page.shape_ok and page.block is None
        assert page.total == 71 and page.has_more
        (post,) = page.listings
        assert post.listing_id == "DEiyb48AeB9" and post.url == "https://www.instagram.com/p/DEiyb48AeB9/"
        assert (post.seller_id, post.seller_name) == ("2700692569", "adrianhorning")
        assert post.shop_url == "https://www.instagram.com/adrianhorning/"
        assert post.title == "" and post.raw["taken_at"] == 1736294201 and post.raw["product_type"] == "clips"
        assert post.image_url and "472965900_18326364268092570" in post.image_url


def test_instagram_profile_feed_caption_becomes_the_title() -> None:
    page = instagram.parse_search((REAL / "instagram/profile_posts_graphql_2017_excerpt.json").read_bytes())
    (post,) = page.listings
    assert post.listing_id == "BbgN5SJF5rO" and post.seller_id == "1948321393"
    assert post.title.startswith("If you ever get to visit Vegas, you have to stop by at @eatvegeway")
    assert post.description.endswith("#burger") and page.total == 177 and page.has_more


def test_instagram_profile_without_shortcodes_is_a_shape_change() -> None:
    body = _load("instagram/web_profile_info_excerpt.json")
    for edge in body["data"]["user"]["edge_owner_to_timeline_media"]["edges"]:
        edge["node"]["code"] = edge["node"].pop("shortcode")
    page = instagram.parse_profile(body)
    assert not page.shape_ok and page.missing_paths == [
        "data.user.edge_owner_to_timeline_media.edges[].node.shortcode"
    ]


def test_instagram_profile_query_opens_the_profile() -> None:
    from crawler.config import load_settings

    settings = load_settings(env={})
    assert instagram.profile_username("@Thrift.Batam") == "thrift.batam"
    assert instagram.profile_username("bal korea") is None
    assert (
        instagram.search_request(settings, "@thrift.batam").url == "https://www.instagram.com/thrift.batam/"
    )


# -- Facebook: nullable seller, string amount --------------------------------------------------------
def _facebook(node: dict[str, Any]) -> dict[str, Any]:
    feed = {"edges": [{"node": {"listing": node}}], "page_info": {"has_next_page": False}}
    return {"data": {"marketplace_search": {"feed_units": feed}}}


def test_facebook_real_node_null_seller_and_string_amount() -> None:
    node = _load("facebook/marketplace_search_listing_node.json")
    page = facebook.parse_search(_facebook(node))
    assert page.shape_ok and not page.has_more
    (item,) = page.listings
    assert item.listing_id == "1054280080442808"
    assert item.title == "Black L-Shaped Corner Desk with Monitor Shelf"
    assert item.seller_id is None and item.seller_name is None  # marketplace_listing_seller: null
    assert item.seller_city == "San Francisco"
    assert item.price is None  # "$40": not rupiah, so no rupiah price is made up
    assert item.raw["amount"] == "40.00" and item.raw["formatted_price"] == "$40"
    rupiah = copy.deepcopy(node)
    rupiah["listing_price"] = {"formatted_amount": "Rp150.000", "amount": "150000.00"}
    assert facebook.parse_search(_facebook(rupiah)).listings[0].price == 150_000
