"""Lexicon: TSV round trip, content hash, and the database store (seed, versions, custody, precision)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawler.errors import NotFound, ParseError, UsageError
from crawler.terms import store
from crawler.terms.lexicon import Lexicon
from storage import custody
from storage.db import Database
from storage.models import CustodyEntry, LexiconVersion, Listing, ReviewDecision, Score, Term

pytestmark = pytest.mark.both_backends


def test_packaged_seed_parses_and_round_trips() -> None:
    lex = Lexicon.packaged()
    assert len(lex.active) == 48
    bal = next(t for t in lex.terms if t.text == "bal")
    assert bal.variants == ("ball", "bale", "baal") and bal.category == "bulk" and bal.strength == "S"
    again = Lexicon.parse_tsv(lex.to_tsv())
    assert again.content_hash() == lex.content_hash()


def test_bad_tsv_names_the_line() -> None:
    with pytest.raises(ParseError, match=r"line 2: .*strength 'X'"):
        Lexicon.parse_tsv("term\tvariants\tcategory\tsignal\tstrength\tnote\nfoo\t\tbulk\tIMPORT\tX\t\n")
    with pytest.raises(ParseError, match="header"):
        Lexicon.parse_tsv("a\tb\n")


def test_seed_is_idempotent_and_versioned(db: Database) -> None:
    with db.session() as s:
        assert store.ensure_seed(s) is True
        assert store.ensure_seed(s) is False
        v = store.current_version(s)
        assert v.term_count == 48 and v.content_hash == Lexicon.packaged().content_hash()
        assert s.scalar(select(func.count()).select_from(LexiconVersion)) == 1
        lex = store.load_lexicon(s)
        assert lex.version_id == v.id and lex.content_hash() == v.content_hash


def test_changes_make_versions_and_custody_entries(db: Database) -> None:
    with db.session() as s:
        first = store.current_version(s)
        row, v2 = store.add_term(s, "ukay", actor="ana", variants=("ukay-ukay",), category="regional")
        assert v2.id != first.id and v2.term_count == 49 and row.approved_by == "ana"
        with pytest.raises(UsageError, match="already exists"):
            store.add_term(s, "UKAY", actor="ana")
        _, v3 = store.retire_term(s, "ukay", actor="ana")
        assert v3.content_hash == first.content_hash  # same content, same version row
        assert v3.id == first.id
        with pytest.raises(NotFound):
            store.retire_term(s, "no such term", actor="ana")
        actions = [e.action for e in s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq))]
        assert actions == ["term_add", "term_retire"]
        assert custody.verify(s) == []


def test_approve_and_reject_proposed(db: Database) -> None:
    with db.session() as s:
        store.ensure_seed(s)
        s.add_all(
            [
                Term(text="bandela", status="proposed", provenance="discovered"),
                Term(text="jumbo pack", status="proposed", provenance="discovered"),
            ]
        )
        s.flush()
        row, version = store.approve_term(s, "bandela", actor="rina")
        assert row.status == "active" and row.approved_by == "rina"
        assert "bandela" in {t["text"] for t in version.snapshot}
        assert "bandela" in {t.text for t in store.load_lexicon(s).active}
        rejected = store.reject_term(s, "jumbo pack", actor="rina")
        assert rejected.status == "rejected"
        with pytest.raises(UsageError):
            store.reject_term(s, "bandela", actor="rina")


def test_import_export(db: Database, tmp_path: Path) -> None:
    extra = tmp_path / "extra.tsv"
    extra.write_text(
        "term\tvariants\tcategory\tsignal\tstrength\tnote\n"
        "ukay\tukay-ukay\tregional\tIMPORT\tM\tPhilippines word\n"
        "bal\tball|bale|baal|bal korea\tbulk\tIMPORT\tS\t\n",
        encoding="utf-8",
    )
    with db.session() as s:
        added, updated, version = store.import_tsv(s, extra, actor="ana")
        assert (added, updated) == (1, 1) and version.term_count == 49
        again = store.import_tsv(s, extra, actor="ana")
        assert again[:2] == (0, 0) and again[2].id == version.id
        out = tmp_path / "out.tsv"
        assert store.export_tsv(s, out) == 49
    assert Lexicon.from_tsv(out).content_hash() == version.content_hash


def test_term_precision_from_review_decisions(db: Database) -> None:
    with db.session() as s:
        store.ensure_seed(s)
        bal = store.get_term(s, "bal")
        korea = store.get_term(s, "korea")
        listings = [
            Listing(listing_key=f"tokopedia:{i}", platform="tokopedia", platform_listing_id=str(i), url="u")
            for i in range(3)
        ]
        s.add_all(listings)
        s.flush()
        signals = [
            [{"term": "bal", "weight": 0.75}, {"term": "korea", "weight": 0.25}],
            [{"term": "bal", "weight": 0.75}],
            [{"term": "korea", "weight": -0.6}],  # a negative use does not count
        ]
        for listing, sig, decision in zip(listings, signals, ["approve", "reject", "approve"], strict=True):
            score = Score(listing_id=listing.id, value=0.9, verdict="strong", scorer_version="t",
                          explanation={"signals": sig})  # fmt: skip
            s.add(score)
            s.flush()
            s.add(ReviewDecision(listing_id=listing.id, decision=decision, reviewer="r"))
        s.flush()
        assert store.term_precision(s) == {bal.id: (1, 1), korea.id: (1, 0)}


def test_ensure_seeded_adapter_for_init(db: Database) -> None:
    from crawler.terms.store import ensure_seeded

    with db.session() as s:
        first = ensure_seeded(s, actor="init")
        second = ensure_seeded(s, actor="init")
    assert first.startswith("seeded the packaged lexicon: 48 active terms, version #1")
    assert second.startswith("lexicon present: 48 active terms, version #1")
