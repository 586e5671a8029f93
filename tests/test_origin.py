"""Where an item ships from: read from a real Shopee answer, stored on the listing (kept when a later
sighting says nothing), and quoted in the takedown list's basis column as evidence of import origin."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from crawler import review
from crawler.exports.rows import basis_text, select_rows
from spiders import shopee
from storage import repositories as repo
from storage.db import Database
from storage.models import Listing

REAL = Path(__file__).parent / "fixtures" / "real"
ABROAD_KEY = "shopee:70515557.2237667952"


def _records() -> list[dict[str, object]]:
    page = shopee.parse_search((REAL / "shopee/search_items_kaos.json").read_bytes(), query="kaos")
    records = []
    for item in page.listings:
        record = item.to_dict()
        record["score"] = {"score": 0.7, "verdict": "candidate", "explanation": {"signals": []}}
        records.append(record)
    return records


def test_origin_is_stored_and_kept(db: Database) -> None:
    with db.session() as session:
        repo.persist_batch(
            session, _records(), sweep_run_id=None, scorer_version="t", lexicon_version_id=None
        )
        session.commit()
    with db.session() as session:
        stored = session.scalars(select(Listing).where(Listing.listing_key == ABROAD_KEY)).one()
        assert stored.ships_from_abroad is True
        assert stored.origin_facts == ['shopee shop_location="Luar Negeri"', "shopee cb_option=1"]
        domestic = session.scalars(select(Listing).where(Listing.ships_from_abroad.is_(False))).all()
        assert len(domestic) == 49 and all(row.origin_facts == [] for row in domestic)
    # a later sighting that does not say where the item ships from (a browser page without the field)
    silent = next(r for r in _records() if r["listing_key"] == ABROAD_KEY)
    silent.update(ships_from_abroad=None, origin_facts=[])
    with db.session() as session:
        repo.persist_batch(session, [silent], sweep_run_id=None, scorer_version="t", lexicon_version_id=None)
        session.commit()
    with db.session() as session:
        stored = session.scalars(select(Listing).where(Listing.listing_key == ABROAD_KEY)).one()
        assert stored.ships_from_abroad is True and len(stored.origin_facts) == 2


def test_origin_is_in_the_exports_basis_column(db: Database) -> None:
    with db.session() as session:
        ids = repo.persist_batch(
            session, _records(), sweep_run_id=None, scorer_version="t", lexicon_version_id=None
        ).ids
        session.commit()
    domestic_key = "shopee:87759532.5424151845"
    with db.session() as session:
        review.approve(session, [ids[ABROAD_KEY], ids[domestic_key]], by="siti")
        session.commit()
    with db.session() as session:
        rows = {row.listing_key: row for row in select_rows(session)}
    assert rows[ABROAD_KEY].matched_signals == (
        'dikirim dari luar negeri (shopee shop_location="Luar Negeri", shopee cb_option=1)'
    )
    assert rows[domestic_key].matched_signals == ""
    explanation = {"signals": [{"term": "bekas", "weight": 0.3, "matched": "bekas"}]}
    assert basis_text(explanation, True, ['lazada location="Overseas"']) == (
        'bekas; dikirim dari luar negeri (lazada location="Overseas")'
    )
    assert basis_text(explanation, None, []) == "bekas"
