"""Volume facts (crawler.intel.volume): sold counts with their precision, stock, price and units, read from
real captured answers through the platforms' own parsers, and stored per sighting on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.intel.volume import Sold, parse_sold, parse_units, volume_facts
from crawler.items import Listing
from spiders import blibli, facebook, shopee, tokopedia
from storage import repositories as repo
from storage.db import Database
from storage.models import Sighting

REAL = Path(__file__).parent / "fixtures" / "real"


@pytest.mark.parametrize(
    ("shown", "low", "high", "precision"),
    [
        ("85,2 rb terjual", 85_200, 85_299, "rounded"),  # Indonesian decimal comma, thousands
        ("100+ terjual", 100, None, "at_least"),  # Tokopedia's search label (real fixture)
        ("80+", 80, None, "at_least"),  # Tokopedia's itemSoldFmt (real fixture)
        ("1 rb+ terjual", 1_000, None, "at_least"),
        ("10RB+ terjual", 10_000, None, "at_least"),
        ("2 rb terjual", 2_000, 2_999, "rounded"),
        ("1.2K sold", 1_200, 1_299, "rounded"),
        ("2,5 jt terjual", 2_500_000, 2_599_999, "rounded"),
        ("1.234 terjual", 1_234, 1_234, "exact"),  # a thousands dot, no multiplier
        ("12 Terjual", 12, 12, "exact"),
        ("Terjual 5", 5, 5, "exact"),
        ("lebih dari 1000 terjual", 1_000, None, "at_least"),
        (1167, 1167, 1167, "exact"),  # Shopee historical_sold
        ("0", 0, 0, "exact"),
    ],
)
def test_sold_shapes_keep_their_precision(shown: object, low: int, high: int | None, precision: str) -> None:
    assert parse_sold(shown) == Sold(low, high, precision)


@pytest.mark.parametrize("shown", [None, "", "baru", "terjual", True, -3, float("nan")])
def test_no_countable_sold_field_is_none_not_zero(shown: object) -> None:
    assert parse_sold(shown) is None


def test_estimates_use_the_interval() -> None:
    assert parse_sold("85,2 rb").estimate == pytest.approx(85_249.5)  # type: ignore[union-attr]
    assert parse_sold("100+").estimate == 100  # type: ignore[union-attr]  # a floor stays a floor


@pytest.mark.parametrize(
    ("text", "pieces", "kg", "kind"),
    [
        ("Bal korea kaos campur isi 300 pcs", 300, None, "bale"),
        ("Balpres jaket 100 kg grade A", None, 100.0, "bale"),
        ("Thrift kaos bal jepang per kilo", None, 1.0, "kg"),
        ("Ambil banyak lebih murah, ± 450 potong", 450, None, "piece"),
        ("Kaos polos cotton combed", None, None, "piece"),
        ("Seragam sekolah isi 3 pasang", None, None, "piece"),
    ],
)
def test_units_from_the_sellers_text(text: str, pieces: int | None, kg: float | None, kind: str) -> None:
    units = parse_units(text)
    assert (units.pieces, units.kg, units.kind) == (pieces, kg, kind)


def test_units_with_many_pieces_are_wholesale() -> None:
    assert parse_units("isi 300 pcs campur").wholesale
    assert not parse_units("kaos 1 pcs").wholesale


def test_real_tokopedia_search_label_is_a_floor() -> None:
    body = {
        "data": {
            "ace_search_product_v4": _json("tokopedia/search_v4_iphone_rapidapi_wrapped.json")["results"]
        }
    }
    (item,) = tokopedia.parse_search([body], query="iphone", page=1, url="u").listings
    facts = volume_facts(item)
    assert facts.sold == Sold(100, None, "at_least") and facts.price == 6_999_000


def test_real_tokopedia_detail_exact_count_wins_over_its_label() -> None:
    listing = tokopedia.parse_detail((REAL / "tokopedia/pdp_get_layout.json").read_bytes()).listing
    assert listing is not None and listing.sold_text == "80+"
    facts = volume_facts(listing)
    assert facts.sold == Sold(81, 81, "exact")  # txStats.countSold
    assert facts.stock == 99997


def test_real_shopee_search_has_exact_counts_and_stock() -> None:
    page = shopee.parse_search((REAL / "shopee/search_items_kaos.json").read_bytes(), query="kaos")
    facts = [volume_facts(item) for item in page.listings]
    assert facts[0].sold == Sold(46, 46, "exact") and facts[0].stock == 1150
    assert all(f.sold is not None and f.sold.precision == "exact" for f in facts)


def test_real_facebook_and_blibli_without_sold_field_say_nothing() -> None:
    fb = facebook.parse_search(_json("facebook/marketplace_search_listing_node.json"), query="kaos")
    for item in fb.listings:
        assert volume_facts(item).sold is None
    page = blibli.parse_search((REAL / "blibli/search_kaos_wrapped.json").read_bytes(), page=1)
    assert page.listings and all(volume_facts(item).sold is None for item in page.listings)


def _json(path: str) -> object:
    import json

    return json.loads((REAL / path).read_text(encoding="utf-8"))


@pytest.mark.both_backends
def test_every_sighting_keeps_its_own_volume_facts(db: Database) -> None:
    listing = Listing(platform="tokopedia", listing_id="9", url="https://www.tokopedia.com/t/9",
                      title="Bal korea isi 300 pcs", price=4_500_000, seller_id="1", sold_text="80+",
                      raw={"stock": "12"})  # fmt: skip
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for day, sold, stock in ((0, "80+", "12"), (3, "1 rb+ terjual", "40")):
        listing.sold_text, listing.raw = sold, {"stock": stock}
        record = {**listing.to_dict(), "volume": volume_facts(listing).to_row()}
        with db.session() as s:
            repo.persist_batch(s, [record], sweep_run_id=None, scorer_version="v", lexicon_version_id=None,
                               seen_at=t0 + timedelta(days=day))  # fmt: skip
    record = {**listing.to_dict(), "sold_text": None, "volume": None}  # an old writer: no facts
    with db.session() as s:
        repo.persist_batch(s, [record], sweep_run_id=None, scorer_version="v", lexicon_version_id=None)
        rows = s.scalars(select(Sighting).order_by(Sighting.id)).all()
        got = [
            (r.sold_low, r.sold_high, r.sold_precision, r.stock, r.price, r.unit_kind, r.unit_pieces)
            for r in rows
        ]
    assert got == [
        (80, None, "at_least", 12, 4_500_000, "bale", 300),
        (1_000, None, "at_least", 40, 4_500_000, "bale", 300),
        (None, None, None, None, None, None, None),
    ]
