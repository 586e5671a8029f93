"""Discovery: the contrast statistic, the ranking on synthetic and catalog text, the stored loop.

Drift words are fresh pseudo-words made at test time (``sandbox.words.pseudo_words``), never written into
the repository, so nothing here can be tuned to them.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from crawler.terms import store
from crawler.terms.discovery import (
    Doc,
    Options,
    ProposalView,
    analyse,
    binomial_z,
    discover,
    gather,
    log_odds_z,
    ranked_proposals,
    run_discovery,
    source_precision,
)
from crawler.terms.lexicon import Lexicon
from crawler.terms.scorer import Scorer
from sandbox.words import pseudo_words
from storage.db import Database
from storage.models import BackgroundDoc, Listing, Seller, Sighting, SweepRun, Term

pytestmark = pytest.mark.both_backends

GARMENTS = ["kaos", "kemeja", "jaket", "hoodie", "celana jeans", "dress", "sweater", "blazer"]
COLOURS = ["hitam", "navy", "putih", "maroon"]


def synthetic(seed: int = 3, words: tuple[str, ...] = ("", "")) -> tuple[list[str], list[str]]:
    """Candidates: bale titles, a quarter with ``words[0]``, a fifth with ``words[1] gudang``; both sides use
    garments, colours and "ready"/"COD" alike."""
    rng = random.Random(seed)
    cands, others = [], []
    for i in range(300):
        g, c = rng.choice(GARMENTS), rng.choice(COLOURS)
        extra = f" {words[0]}" if i % 4 == 0 else (f" {words[1]} gudang" if i % 5 == 0 else "")
        cands.append(f"bal {rng.choice(['korea', 'jepang'])} {g} {c} ready{extra} 100 kg")
    for _ in range(600):
        g, c = rng.choice(GARMENTS), rng.choice(COLOURS)
        others.append(f"{g} {rng.choice(['baru', 'polos', 'motif', 'premium'])} {c} ready COD bandung")
    return cands, others


def test_binomial_z_is_exact_for_small_counts_and_ordered() -> None:
    # 8 of 8 occurrences among half of the fields: P = 0.5^8 = 0.0039 -> z = 2.66
    assert binomial_z(8, 100, 0, 100) == pytest.approx(2.66, abs=0.01)
    assert binomial_z(0, 100, 8, 100) < -2
    assert binomial_z(10, 100, 10, 100) < 0.5  # no difference
    assert binomial_z(40, 100, 0, 1000) > binomial_z(4, 100, 0, 1000) > 1.96
    assert binomial_z(5, 100, 0, 0) == 0.0  # no background, no contrast
    big = binomial_z(600, 1000, 200, 1000)  # normal approximation beyond the exact limit
    assert 10 <= big <= 12.0
    assert log_odds_z(50, 100, 5, 1000) > 3  # the older statistic is still available


def test_synthetic_new_words_found_everyday_words_never() -> None:
    new = pseudo_words(11, 2)
    cands, others = synthetic(words=new)
    result = discover(cands, others, Lexicon.packaged(), options=Options(min_support=5))
    phrases = [p.phrase for p in result.proposals]
    assert set(phrases[:2]) == {new[0], f"{new[1]} gudang"}, phrases
    top = next(p for p in result.proposals if p.phrase == new[0])
    assert top.count_candidates == 75 and top.count_background == 0 and top.contrast > 5
    assert "contrast" in top.sources
    assert all(new[0] in cands[i] for i in top.examples)
    # lexicon words, numbers, garments, colours and commerce words are never proposed
    for banned in ("bal", "korea", "bal korea", "100", "kg", "ready", "kaos", "hitam", "navy", "bal ready"):
        assert banned not in phrases


def test_rejected_words_stay_out_and_support_is_required() -> None:
    new = pseudo_words(12, 2)
    cands, others = synthetic(words=new)
    result = discover(cands, others, Lexicon.packaged(), rejected=[new[0].upper()])
    assert new[0] not in [p.phrase for p in result.proposals]
    assert discover([], others, Lexicon.packaged()).skipped
    assert discover(cands[:8], others, Lexicon.packaged(), options=Options(min_support=5)).proposals == []


def test_context_similarity_knows_where_seller_words_stand() -> None:
    """Two unknown words, equally rare: one takes the bulk word's place, one sits with sizes; only the first
    is near the known seller words."""
    slot, other = pseudo_words(13, 2)
    rng = random.Random(5)
    cands, back = [], []
    for i in range(400):
        g = rng.choice(GARMENTS)
        if i % 10 == 0:
            cands.append(f"{slot} {g} korea isi 300 pcs campur")
        elif i % 10 == 1:
            cands.append(f"bal {g} korea isi 300 pcs {rng.choice(COLOURS)} size {other}")
        else:
            cands.append(f"{rng.choice(['bal', 'karungan', 'balpres'])} {g} korea isi 300 pcs campur")
    for _ in range(800):
        back.append(f"{rng.choice(GARMENTS)} {rng.choice(COLOURS)} size L ready")
    result = discover(cands, back, Lexicon.packaged(), options=Options(limit=50))
    by = {p.phrase: p for p in result.proposals}
    assert by[slot].context > by[other].context + 0.2, (by[slot], by[other])
    assert {"bal", "karungan"} & set(by[slot].neighbours)
    off = discover(cands, back, Lexicon.packaged(), options=Options(limit=50, use_context=False))
    assert all(p.context == 0 for p in off.proposals)


def _simulate(words: tuple[str, ...], seed: int, *, details: bool) -> tuple[list[Doc], list[Doc]]:
    """What a sweep of the HTTP platforms and the background crawl would hand discovery, in-process: the
    replicas' own search over the catalog, lexicon queries (3 pages) and generic queries (2 pages)."""
    from sandbox.catalog import generate
    from sandbox.state import SandboxState

    state = SandboxState(generate(seed, 6000, drift_terms=words), seed=seed)
    lexicon = Lexicon.packaged()
    scorer = Scorer(lexicon)
    queries = [t.text for t in lexicon.active if t.strength in ("S", "M") and t.category != "negative"]
    seen: dict[str, Doc] = {}
    cands: list[Doc] = []
    for platform, page_size in (("tokopedia", 60), ("lazada", 40), ("blibli", 40)):
        for q in queries:
            if state.blocked_query(platform, q):
                continue
            for page in range(3):
                rows, _ = state.search(platform, q, page * page_size, page_size)
                for x in rows:
                    if x.key not in seen:
                        doc = Doc(x.title, x.description if details else "", x.key)
                        seen[x.key] = doc
                        text = f"{doc.title}\n{doc.description}" if doc.description else doc.title
                        if scorer.score(text).verdict in ("candidate", "strong"):
                            cands.append(doc)
    back: dict[str, Doc] = {}
    for platform, page_size in (("tokopedia", 60), ("lazada", 40), ("blibli", 40)):
        for q in ("kemeja", "kaos", "jaket", "hoodie", "celana", "dress", "sweater", "rok"):
            for page in range(2):
                rows, _ = state.search(platform, q, page * page_size, page_size)
                for x in rows:
                    if x.key in seen or x.key in back:
                        continue
                    if scorer.score(x.title).verdict not in ("candidate", "strong"):
                        back[x.key] = Doc(x.title, "", x.key)
    return cands, list(back.values())


@pytest.mark.parametrize("details", [True, False], ids=["details", "titles-only"])
def test_catalog_drift_words_rank_without_everyday_words(details: bool) -> None:
    words = pseudo_words(4242, 5)
    cands, back = _simulate(words, 77, details=details)
    result = discover(cands, back, Lexicon.packaged(), options=Options(limit=25))
    top = [p.phrase for p in result.proposals]
    found = [w for w in words if w in top]
    assert len(found) >= (5 if details else 4), (words, top)
    everyday = {"kemeja", "kaos", "jaket", "celana", "xl", "xxl", "hitam", "navy", "ready", "cod", "medan"}
    assert not everyday & {w for p in top for w in p.split()}, top


# -- stored runs ------------------------------------------------------------------------------------------


def _store_run(
    db: Database,
    cands: list[str],
    others: list[str],
    related: dict[str, list[str]] | None = None,
    *,
    queries: list[str] | None = None,
    query_of: dict[int, str] | None = None,
) -> int:
    with db.session() as s:
        run = SweepRun(platforms=["tokopedia"], stats={"related_terms": related or {}}, queries=queries or [])
        s.add(run)
        s.flush()
        for i, (text, verdict) in enumerate([(t, "strong") for t in cands] + [(t, "clear") for t in others]):
            key = f"tokopedia:{run.id}-{i}"
            listing = Listing(listing_key=key, platform="tokopedia", platform_listing_id=f"{run.id}-{i}",
                              url=f"https://www.tokopedia.com/shop/{i}", title=text, verdict=verdict,
                              score_value=0.9 if verdict == "strong" else 0.0)  # fmt: skip
            s.add(listing)
            s.flush()
            s.add(Sighting(listing_id=listing.id, sweep_run_id=run.id, query=(query_of or {}).get(i, "bal")))
        return run.id


def _store_background(db: Database, texts: list[str]) -> None:
    with db.session() as s:
        run = SweepRun(platforms=["tokopedia"], kind="background", status="completed")
        s.add(run)
        s.flush()
        for i, text in enumerate(texts):
            s.add(BackgroundDoc(sweep_run_id=run.id, platform="tokopedia", listing_key=f"tokopedia:bg{i}",
                                query="kaos", title=text))  # fmt: skip


def test_run_discovery_stores_evidence_and_keeps_first_seen(db: Database) -> None:
    new = pseudo_words(21, 3)
    cands, others = synthetic(words=new[:2])
    _store_background(db, others)
    run_id = _store_run(db, cands, [], {"tokopedia": [f"Baju {new[2]}", "bal korea"], "shopee": [new[2]]})
    with db.session() as s:
        touched = run_discovery(s, run_id, min_support=5)
        texts = {t.text for t in touched}
        assert {new[0], f"{new[1]} gudang", new[2]} <= texts
        assert "bal korea" not in texts  # the lexicon already covers it
        row = s.scalar(select(Term).where(Term.text == new[0]))
        assert row is not None and row.status == "proposed" and row.provenance == "discovered"
        view = ProposalView.of(row)
        assert view.count_candidates == 75 and view.count_background == 0 and "contrast" in view.sources
        assert view.example_listings[0]["url"].startswith("https://www.tokopedia.com/")
        assert view.first_seen and view.sweep_run_ids == [run_id]
        plat = ProposalView.of(s.scalar(select(Term).where(Term.text == new[2])))
        assert plat.sources == ["platform:shopee", "platform:tokopedia"]
        assert ranked_proposals(s)[0].text == new[0]
        info = s.get(SweepRun, run_id).stats["discovery"]
        assert info["status"] == "ok" and "ordinary listings" in info["message"]
        first_seen = view.first_seen
    run2 = _store_run(db, cands, [])
    with db.session() as s:
        run_discovery(s, run2, min_support=5)
        rows = s.scalars(select(Term).where(Term.text == new[0])).all()
        assert len(rows) == 1
        view = ProposalView.of(rows[0])
        assert view.sweep_run_ids == [run_id, run2] and view.first_seen == first_seen


def test_approve_queries_it_and_records_what_only_it_found_reject_keeps_it_out(db: Database) -> None:
    new = pseudo_words(22, 2)
    cands, others = synthetic(words=new)
    _store_background(db, others)
    run1 = _store_run(db, cands, [])
    with db.session() as s:
        run_discovery(s, run1, min_support=5)
        good = s.scalar(select(Term).where(Term.text == new[0]))
        bad = s.scalar(select(Term).where(Term.text == f"{new[1]} gudang"))
        assert good is not None and bad is not None
        store.approve_term(s, good.id, actor="ana")
        store.reject_term(s, bad.id, actor="ana")
    # the next sweep queries the approved word: 3 listings only its query found, 1 also found by "bal"
    only = [f"{new[0]} kemeja korea isi 300 pcs", f"jaket {new[0]}", f"{new[0]} campur", f"bal {new[0]}"]
    run2 = _store_run(
        db, only, others[:5], queries=["bal", new[0]], query_of={0: new[0], 1: new[0], 2: new[0]}
    )
    with db.session() as s:
        # listing 3 was found by the "bal" query; give it a second sighting by the new word's query
        listing = s.scalar(select(Listing).where(Listing.listing_key == f"tokopedia:{run2}-3"))
        s.add(Sighting(listing_id=listing.id, sweep_run_id=run2, query=new[0]))
    with db.session() as s:
        touched = run_discovery(s, run2, min_support=1)
        assert f"{new[1]} gudang" not in {t.text for t in touched}  # rejected for good
        good = s.scalar(select(Term).where(Term.text == new[0]))
        (y,) = ProposalView.of(good).yields
        assert (y["listings"], y["new_listings"], y["new_candidates"]) == (4, 3, 3)
        assert source_precision(s) == {"contrast": (1, 1)}
    run3 = _store_run(db, cands, [])
    with db.session() as s:
        touched = run_discovery(s, run3, min_support=5)
        assert not {new[0], f"{new[1]} gudang"} & {t.text for t in touched}


def test_bad_input_gives_a_status_and_no_proposals(db: Database) -> None:
    new = pseudo_words(23, 2)
    cands, others = synthetic(words=new)
    empty = _store_run(db, [], [])
    with db.session() as s:
        assert run_discovery(s, empty) == []
        assert "found no listings" in s.get(SweepRun, empty).stats["discovery"]["message"]
    clear_only = _store_run(db, [], others)
    with db.session() as s:
        assert run_discovery(s, clear_only) == []
        assert "no candidate listings" in s.get(SweepRun, clear_only).stats["discovery"]["message"]
    # candidates, but the background was blocked: no proposals rather than noise
    with db.session() as s:
        attention = ["tokopedia: 12 of 12 searches stayed blocked after retries"]
        s.add(
            SweepRun(platforms=["tokopedia"], kind="background", status="partial", needs_attention=attention)
        )
    blocked = _store_run(db, cands, [])
    with db.session() as s:
        assert run_discovery(s, blocked) == []
        info = s.get(SweepRun, blocked).stats["discovery"]
        assert info["status"] == "skipped"
        assert "no background corpus" in info["message"] and "stayed blocked" in info["message"]
        assert s.scalar(select(Term).where(Term.status == "proposed")) is None


def test_gather_drops_background_listings_that_lexicon_queries_returned_or_that_score(db: Database) -> None:
    new = pseudo_words(24, 2)
    cands, others = synthetic(words=new)
    _store_background(db, [*others, "bal korea isi 300 pcs", f"kaos {new[0]}"])
    run_id = _store_run(db, cands, [])
    with db.session() as s:
        listing = s.scalar(select(Listing).where(Listing.listing_key == f"tokopedia:{run_id}-0"))
        s.add(BackgroundDoc(sweep_run_id=1, platform="tokopedia", listing_key=listing.listing_key,
                            query="kaos", title=listing.title))  # fmt: skip
        shop = Seller(platform="tokopedia", platform_seller_id="77", name="Toko Bal")
        s.add(shop)
        s.flush()
        listing.seller_id = shop.id
        same_shop = f"kaos polos {new[1]}"
        s.add(BackgroundDoc(sweep_run_id=1, platform="tokopedia", listing_key="tokopedia:shop77",
                            query="kaos", title=same_shop, seller_key="tokopedia:77"))  # fmt: skip
    with db.session() as s:
        inputs = gather(s, run_id)
        titles = {d.title for d in inputs.background}
        assert "bal korea isi 300 pcs" not in titles  # scores as a candidate
        assert cands[0] not in titles  # a lexicon query returned it
        assert f"kaos polos {new[1]}" not in titles  # the shop of a candidate sells it
        assert f"kaos {new[0]}" in titles
        assert analyse(inputs).proposals
