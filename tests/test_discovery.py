"""Discovery: over-represented phrases on synthetic data, the sandbox catalog, and a stored sweep run."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from crawler.terms import store
from crawler.terms.discovery import discover, log_odds_z, ranked_proposals, run_discovery
from crawler.terms.lexicon import Lexicon
from crawler.terms.scorer import Scorer
from storage.db import Database
from storage.models import Listing, Sighting, SweepRun, Term

pytestmark = pytest.mark.both_backends

GARMENTS = ["kaos", "kemeja", "jaket", "hoodie", "celana jeans", "dress", "sweater", "blazer"]


def synthetic(seed: int = 3) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    cands, others = [], []
    for i in range(300):
        g = rng.choice(GARMENTS)
        extra = " gembolan" if i % 4 == 0 else (" obral gudang" if i % 5 == 0 else "")
        cands.append(f"bal {rng.choice(['korea', 'jepang'])} {g} murah{extra} 100 kg")
    for _ in range(600):
        g = rng.choice(GARMENTS)
        others.append(f"{g} {rng.choice(['baru', 'polos', 'motif', 'premium'])} murah bandung")
    return cands, others


def test_log_odds_prefers_over_represented() -> None:
    assert log_odds_z(50, 100, 5, 1000) > 3
    assert log_odds_z(10, 100, 100, 1000) == pytest.approx(0, abs=0.5)
    assert log_odds_z(40, 100, 0, 1000) > log_odds_z(4, 100, 0, 1000)


def test_synthetic_new_words_found_lexicon_and_stopwords_excluded() -> None:
    cands, others = synthetic()
    props = discover(cands, others, Lexicon.packaged(), min_support=5)
    phrases = [p.phrase for p in props]
    assert phrases[:2] == ["gembolan", "obral gudang"] or set(phrases[:2]) == {"gembolan", "obral gudang"}
    top = props[0]
    assert top.count_candidates in (75, 60) and top.count_others == 0 and top.lift > 2
    assert all(cands[i].count(top.display) for i in top.examples)
    # lexicon terms, lexicon + stopword, numbers and generic words are never proposed
    for banned in ("bal", "korea", "bal murah", "100", "kg", "murah", "kaos", "bal korea"):
        assert banned not in phrases


def test_min_support_and_empty_input() -> None:
    cands, others = synthetic()
    assert discover([], others, Lexicon.packaged()) == []
    assert discover(cands[:8], others, Lexicon.packaged(), min_support=5) == []


def test_catalog_drift_terms_in_top_20() -> None:
    catalog = pytest.importorskip("sandbox.catalog")
    listings = catalog.generate(99, 3000)
    scorer = Scorer(Lexicon.packaged())
    flagged = [
        scorer.score_listing(x.title, x.description).verdict in ("strong", "candidate") for x in listings
    ]
    texts = [f"{x.title}\n{x.description}" for x in listings]
    cands = [t for t, f in zip(texts, flagged, strict=True) if f]
    others = [t for t, f in zip(texts, flagged, strict=True) if not f]
    props = discover(cands, others, Lexicon.packaged(), limit=20)
    top = [p.phrase for p in props]
    missing = [d for d in catalog.DRIFT_TERMS if d not in top]
    assert not missing, (missing, top)


def _store_run(db: Database, cands: list[str], others: list[str], related: dict[str, list[str]]) -> int:
    with db.session() as s:
        run = SweepRun(platforms=["tokopedia"], stats={"related_terms": related})
        s.add(run)
        s.flush()
        for i, (text, verdict) in enumerate([(t, "strong") for t in cands] + [(t, "clear") for t in others]):
            key = f"tokopedia:{run.id}-{i}"
            value = 0.9 if verdict == "strong" else 0.0
            listing = Listing(listing_key=key, platform="tokopedia", platform_listing_id=str(i), url="u",
                              title=text, verdict=verdict, score_value=value)  # fmt: skip
            s.add(listing)
            s.flush()
            s.add(Sighting(listing_id=listing.id, sweep_run_id=run.id))
        return run.id


def test_run_discovery_stores_updates_and_approves(db: Database) -> None:
    cands, others = synthetic()
    run_id = _store_run(db, cands, others, {"tokopedia": ["Baju Ukay", "bal korea"], "shopee": ["baju ukay"]})
    with db.session() as s:
        touched = run_discovery(s, run_id, min_support=5)
        texts = {t.text for t in touched}
        assert {"gembolan", "obral gudang", "baju ukay"} <= texts
        assert "bal korea" not in texts  # the lexicon already covers it
        gem = s.scalar(select(Term).where(Term.text == "gembolan"))
        assert gem is not None and gem.status == "proposed" and gem.provenance == "discovered"
        d = gem.discovery
        assert d["count_candidates"] == 75 and d["count_others"] == 0 and d["sweep_run_id"] == run_id
        assert d["examples"][0].startswith("tokopedia:") and d["score_lift"] > 0
        ukay = s.scalar(select(Term).where(Term.text == "baju ukay"))
        assert ukay is not None and ukay.discovery["sources"] == ["platform:shopee", "platform:tokopedia"]
        assert ranked_proposals(s)[0].text == "gembolan"
    run2 = _store_run(db, cands, others, {})
    with db.session() as s:
        run_discovery(s, run2, min_support=5)
        rows = s.scalars(select(Term).where(Term.text == "gembolan")).all()
        assert len(rows) == 1 and rows[0].discovery["sweep_run_ids"] == [run_id, run2]
        _, version = store.approve_term(s, rows[0].id, actor="ana")
        assert "gembolan" in {t["text"] for t in version.snapshot}
    run3 = _store_run(db, cands, others, {})
    with db.session() as s:
        touched = run_discovery(s, run3, min_support=5)
        assert "gembolan" not in {t.text for t in touched}  # now in the lexicon
