"""Review queue: ordering, decisions (latest wins), custody, term precision, CLI incl. `review next`."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from crawler import cli_common, review
from crawler.cli import main
from crawler.errors import NotFound, UsageError
from storage import custody
from storage import repositories as repo
from storage.db import Database
from storage.models import Capture, CustodyEntry, Listing, ReviewDecision

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def add_listing(
    db: Database,
    key: str,
    title: str,
    score: float,
    verdict: str,
    signals: list[dict[str, Any]] | None = None,
    description: str = "",
    **extra: Any,
) -> int:
    platform, listing_id = key.split(":", 1)
    with db.session() as s:
        lid, _ = repo.upsert_listing(
            s,
            {
                "listing_key": key,
                "platform": platform,
                "listing_id": listing_id,
                "url": f"https://{platform}.example/{listing_id}",
                "title": title,
                "description": description,
                "price": 250_000,
                "seller_id": "s1",
                "seller_name": "Gudang Bal",
                "seller_city": "Bandung",
            },
            seen_at=T0,
        )
        repo.add_score(
            s,
            listing_id=lid,
            value=score,
            verdict=verdict,
            explanation={"signals": signals or []},
            scorer_version="t1",
        )
        listing = s.get(Listing, lid)
        assert listing is not None
        for name, value in extra.items():
            setattr(listing, name, value)
    return lid


def sig(term: str, a: int, b: int, weight: float = 0.5) -> dict[str, Any]:
    return {"term": term, "span": [a, b], "weight": weight}


@pytest.fixture
def cli_db() -> Database:
    return cli_common.database()


def seed(db: Database) -> dict[str, int]:
    return {
        "a": add_listing(db, "tokopedia:1", "Bal Korea isi 300", 0.95, "strong", [sig("bal", 0, 3)]),
        "b": add_listing(db, "shopee:2.3", "Karungan ex Jepang", 0.7, "candidate", [sig("karungan", 0, 8)]),
        "c": add_listing(db, "tokopedia:4", "Kaos polos baru", 0.1, "clear"),
        "d": add_listing(
            db, "lazada:5", "Bal preloved", 0.8, "strong", [sig("bal", 0, 3), sig("preloved", 4, 12, 0.1)]
        ),
    }


def test_queue_orders_by_score_and_filters(db: Database) -> None:
    ids = seed(db)
    with db.session() as s:
        queue = review.review_queue(s)
        assert [i.listing_id for i in queue] == [ids["a"], ids["d"], ids["b"]]  # "clear" never queued
        assert [i.listing_id for i in review.review_queue(s, platform="shopee")] == [ids["b"]]
        assert [i.listing_id for i in review.review_queue(s, min_score=0.8)] == [ids["a"], ids["d"]]
        assert [i.listing_id for i in review.review_queue(s, limit=1, offset=1)] == [ids["d"]]
        assert review.queue_size(s) == 3
        review.approve(s, [ids["a"]], by="Siti")
        review.reject(s, ["lazada:5"], by="Siti", reason="legit_preloved")
        assert [i.listing_id for i in review.review_queue(s)] == [ids["b"]]


def test_decisions_are_custody_logged_and_latest_wins(db: Database) -> None:
    ids = seed(db)
    with db.session() as s:
        review.approve(s, ["tokopedia:1", ids["b"]], by="Siti", note="bal 300", at=T0)
        review.reject(s, [ids["a"]], by="Budi", reason="insufficient_evidence", at=T0 + timedelta(hours=1))
        entries = s.scalars(select(CustodyEntry).where(CustodyEntry.action == "review")).all()
        assert [(e.actor, e.object_id, e.details["decision"]) for e in entries] == [
            ("Siti", "tokopedia:1", "approve"),
            ("Siti", "shopee:2.3", "approve"),
            ("Budi", "tokopedia:1", "reject"),
        ]
        assert custody.verify(s) == []
        latest = review.latest_decisions_subquery()
        state = dict(s.execute(select(latest.c.listing_id, latest.c.decision)).all())
        assert state == {ids["a"]: "reject", ids["b"]: "approve"}
        decision = s.scalars(select(ReviewDecision).where(ReviewDecision.listing_id == ids["b"])).one()
        assert decision.score_id is not None and decision.note == "bal 300"


def test_decision_input_errors(db: Database) -> None:
    seed(db)
    with db.session() as s:
        with pytest.raises(UsageError, match="reviewer"):
            review.approve(s, ["tokopedia:1"], by="  ")
        with pytest.raises(UsageError, match="unknown reason"):
            review.reject(s, ["tokopedia:1"], by="Siti", reason="because")
        with pytest.raises(NotFound, match="tokopedia:999"):
            review.approve(s, ["tokopedia:999"], by="Siti")
        with pytest.raises(UsageError, match="not a listing id"):
            review.approve(s, ["nonsense"], by="Siti")
        assert s.scalars(select(ReviewDecision)).all() == []


def test_term_precision_counts_latest_decisions(db: Database) -> None:
    ids = seed(db)
    with db.session() as s:
        review.approve(s, [ids["a"], ids["b"], ids["d"]], by="Siti", at=T0)
        review.reject(s, [ids["d"]], by="Siti", reason="legit_preloved", at=T0 + timedelta(minutes=1))
        assert review.term_precision(s) == {"bal": (1, 1), "karungan": (1, 0), "preloved": (0, 1)}


def test_review_card_highlights_signals_and_finds_screenshot_and_parent(db: Database, tmp_path: Any) -> None:
    parent = add_listing(db, "tokopedia:10", "Bal Korea lama", 0.9, "strong", [sig("bal", 0, 3)])
    child = add_listing(
        db,
        "tokopedia:11",
        "Bal Korea baru",
        0.9,
        "strong",
        [sig("bal", 0, 3), sig("ex korea", 23, 31, 0.3)],
        description="isi 300 ex Korea",
        relist_of_id=parent,
    )
    shot = "ab" * 32
    with db.session() as s:
        s.add(Capture(listing_key="tokopedia:11", url="u", screenshot_sha256=shot, captured_at=T0))
        s.add(
            Capture(
                listing_key="tokopedia:11",
                url="u",
                observable=False,
                screenshot_sha256="cd" * 32,
                captured_at=T0,
            )
        )
    with db.session() as s:
        card = review.review_card(s, child, tmp_path / "blobs")
    assert card.screenshot == tmp_path / "blobs" / "ab" / "ab" / shot
    assert card.relist_parent is not None and card.relist_parent.startswith("tokopedia:10 ")
    lines = [line.plain for line in review.highlight_signals(card.text, card.signals)]
    assert lines[0].startswith("Bal Korea baru isi 300 ex Korea") and "[bal, +0.50]" in lines[0]
    assert "ex Korea" in lines[1] and "[ex korea, +0.30]" in lines[1]
    styled = review.highlight_signals(card.text, card.signals)[1]
    bold = [
        card.text.replace("\n", " ")[span.start : span.end]
        for span in styled.spans
        if "bold" in str(span.style)
    ]
    assert bold == ["ex Korea"]


# -- CLI -----------------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_approve_reject(cli_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    seed(cli_db)
    code, out, _ = run(["review", "list", "--min-score", "0.5"], capsys)
    assert code == 0 and "tokopedia:1" in out and "shopee:2.3" in out and "tokopedia:4" not in out
    code, out, err = run(["review", "approve", "tokopedia:1", "--by", "Siti", "--note", "bal"], capsys)
    assert code == 0 and "approved 1" in out, err
    code, _, err = run(["review", "reject", "shopee:2.3", "--by", "Siti", "--reason", "nope"], capsys)
    assert (
        code == 2 and err.strip().startswith("error: unknown reason") and len(err.strip().splitlines()) == 1
    )
    code, _, err = run(["review", "approve", "tokopedia:404", "--by", "Siti"], capsys)
    assert code == 1 and err.strip() == "error: no such listing: tokopedia:404"
    code, out, _ = run(["review", "stats"], capsys)
    assert code == 0 and "bal" in out and "100%" in out


def test_cli_next_driven_by_lines(
    cli_db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed(cli_db)
    # queue: a (0.95), d (0.8), b (0.7): approve a, skip d, reject b, then the queue has only d (skipped)
    monkeypatch.setattr("sys.stdin", io.StringIO("a\ns\nr\n"))
    code, out, err = run(["review", "next", "--by", "Siti", "--reason", "legit_new"], capsys)
    assert code == 0, err
    assert "Bal Korea isi 300" in out and "queue empty" in out
    assert "approved 1, rejected 1, skipped 1" in out
    with cli_db.session() as s:
        decisions = {d.listing_id: (d.decision, d.reason) for d in s.scalars(select(ReviewDecision))}
    assert decisions == {ids["a"]: ("approve", None), ids["b"]: ("reject", "legit_new")}
    # end of input quits cleanly
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, _ = run(["review", "next", "--by", "Siti"], capsys)
    assert code == 0 and "approved 0, rejected 0, skipped 0" in out


def test_cli_next_in_uncertainty_order_shows_the_model(
    cli_db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(cli_db)
    explanation = {
        "signals": [sig("thrift", 0, 6, 0.3)],
        "model_version": "tm-test",
        "rule_score": 0.3,
        "probability": 0.52,
        "features": [
            {"feature": "word 'kontainer'", "weight": 1.2, "span": [13, 22], "matched": "kontainer"}
        ],
        "product": {"kind": "clothing", "condition": "used", "bulk": "none", "evidence": {}},
    }
    add_listing(cli_db, "blibli:9", "Thrift jaket kontainer", 0.52, "weak", description="")
    with cli_db.session() as s:
        lid = s.scalar(select(Listing.id).where(Listing.listing_key == "blibli:9"))
        repo.add_score(
            s, listing_id=lid, value=0.52, verdict="weak", explanation=explanation, scorer_version="t1"
        )
    monkeypatch.setattr("sys.stdin", io.StringIO("a\nq\n"))
    code, out, err = run(["review", "next", "--by", "Siti", "--order", "uncertain"], capsys)
    assert code == 0, err
    assert out.index("blibli:9") < out.index("approved 1")  # the least certain listing came first
    assert "tm-test" in out and "kontainer" in out and "bulk none" in out
    code, _, err = run(["review", "next", "--by", "Siti", "--order", "random"], capsys)
    assert code == 2 and "unknown order" in err
