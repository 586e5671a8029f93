from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import run_concurrently
from sqlalchemy import func, select, text

from storage import repositories as repo
from storage.db import Database
from storage.models import STATUS_TABLES, Capture, Listing, Score, Seller, Sighting, SweepRun

pytestmark = pytest.mark.both_backends


def test_migrate_from_empty_creates_every_table(database_url: Callable[..., str]) -> None:
    db = Database(database_url("fresh", migrated=False))
    assert db.table_names() == []
    db.migrate()
    tables = set(db.table_names())
    assert {m.__tablename__ for m in STATUS_TABLES} <= tables
    assert "alembic_version" in tables
    head = db.current_revision()
    db.migrate()  # idempotent
    assert db.current_revision() == head
    db.dispose()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _listing(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "listing_key": "tokopedia:123",
        "platform": "tokopedia",
        "listing_id": "123",
        "url": "https://www.tokopedia.com/toko/bal-korea",
        "title": "Bal Korea isi 300 pcs",
        "description": "WA 0812",
        "price": 5_000_000,
        "seller_id": "77",
        "seller_name": "Toko Bal",
        "seller_city": "Medan",
        "contact_handles": ["wa:62812"],
    }
    data.update(over)
    return data


def test_listing_seller_sighting_score_round_trip(db: Database) -> None:
    seen = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with db.session() as s:
        run_id = repo.start_run(s, platforms=["tokopedia"], queries=["bal"])
        listing_id, created = repo.upsert_listing(s, _listing(), seen_at=seen)
        assert created
        sighting_id = repo.add_sighting(
            s, listing_id=listing_id, sweep_run_id=run_id, query="bal", page=1, rank=3, raw={"ads": ""}
        )
        repo.add_score(
            s,
            listing_id=listing_id,
            sighting_id=sighting_id,
            value=0.91,
            verdict="strong",
            explanation={"signals": [{"term": "bal", "span": [0, 3], "weight": 0.5}]},
            scorer_version="t1",
        )
        repo.finish_run(s, run_id, status="completed", stats={"tokopedia": {"listings": 1}})
    later = seen + timedelta(days=1)
    with db.session() as s:
        listing_id2, created2 = repo.upsert_listing(
            s,
            _listing(title="Bal Korea isi 300 pcs (restock)", contact_handles=["ig:@balkorea"]),
            seen_at=later,
        )
        assert (listing_id2, created2) == (listing_id, False)
    with db.session() as s:
        listing = s.scalars(select(Listing)).one()
        assert listing.title == "Bal Korea isi 300 pcs (restock)"
        assert listing.first_seen == seen and listing.last_seen == later
        assert listing.first_seen.tzinfo is not None
        assert listing.contact_handles == ["ig:@balkorea", "wa:62812"]
        assert listing.verdict == "strong" and listing.score_value == 0.91
        seller = s.scalars(select(Seller)).one()
        assert (seller.platform, seller.platform_seller_id, seller.city) == ("tokopedia", "77", "Medan")
        assert listing.seller is not None and listing.seller.name == "Toko Bal"
        sighting = s.scalars(select(Sighting)).one()
        assert (sighting.query, sighting.page, sighting.rank, sighting.raw) == ("bal", 1, 3, {"ads": ""})
        score = s.scalars(select(Score)).one()
        assert score.explanation["signals"][0]["span"] == [0, 3]
        run = s.scalars(select(SweepRun)).one()
        assert run.status == "completed" and run.ended_at is not None
        assert run.stats == {"tokopedia": {"listings": 1}}
        counts = repo.table_counts(s)
    assert counts["listings"] == 1 and counts["sellers"] == 1 and counts["sightings"] == 1
    assert counts["scores"] == 1 and counts["sweep_runs"] == 1 and counts["custody_entries"] == 0


def test_session_rolls_back_on_error(db: Database) -> None:
    try:
        with db.session() as s:
            repo.upsert_listing(s, _listing())
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.session() as s:
        assert repo.table_counts(s)["listings"] == 0


def test_failed_job_is_reported_until_a_later_success(db: Database) -> None:
    from storage.models import JobRun

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as s:
        s.add(JobRun(job_name="nightly", started_at=t0, status="failed", exit_code=1))
        s.add(JobRun(job_name="rechecks", started_at=t0, status="failed", exit_code=2))
        s.add(JobRun(job_name="rechecks", started_at=t0 + timedelta(hours=1), status="ok", exit_code=0))
    with db.session() as s:
        assert [j.job_name for j in repo.latest_failed_jobs(s)] == ["nightly"]


def test_a_flagged_relisting_stays_a_candidate_when_rescored_weak(db: Database) -> None:
    with db.session() as s:
        parent_id, _ = repo.upsert_listing(s, _listing())
        child_id, _ = repo.upsert_listing(
            s, _listing(listing_key="tokopedia:124", listing_id="124", title="kaos")
        )
        s.get(Listing, child_id).relist_of_id = parent_id  # type: ignore[union-attr]
        repo.add_score(s, listing_id=child_id, value=0.1, verdict="clear", explanation={}, scorer_version="t")
        repo.add_score(
            s, listing_id=parent_id, value=0.1, verdict="clear", explanation={}, scorer_version="t"
        )
    with db.session() as s:
        assert s.get(Listing, child_id).verdict == "candidate"  # type: ignore[union-attr]
        assert s.get(Listing, parent_id).verdict == "clear"  # type: ignore[union-attr]


def _snapshot(db: Database) -> dict[str, object]:
    with db.session() as s:
        listings = [
            (r.listing_key, r.title, r.price, r.verdict, r.score_value, r.contact_handles, r.extra_ids,
             r.seller.platform_seller_id if r.seller else None)
            for r in s.scalars(select(Listing).order_by(Listing.listing_key))
        ]  # fmt: skip
        sellers = [
            (r.platform, r.platform_seller_id, r.name, r.city, r.contact_handles)
            for r in s.scalars(select(Seller).order_by(Seller.platform_seller_id))
        ]
        sightings = sorted(
            (r.query, r.page, r.rank, r.sponsored, r.raw) for r in s.scalars(select(Sighting))
        )  # fmt: skip
        scores = sorted((r.value, r.verdict, r.scorer_version) for r in s.scalars(select(Score)))
    return {"listings": listings, "sellers": sellers, "sightings": sightings, "scores": scores}


def test_persist_batch_stores_what_the_row_by_row_path_stores(make_db: Callable[..., Database]) -> None:
    records = [
        _listing(listing_key=f"tokopedia:{i}", listing_id=str(i), seller_id=str(i % 3), title=f"bal {i}",
                 contact_handles=[f"wa:6281{i % 2}"], extra_ids={"tts": str(i)} if i % 2 else {},
                 query="bal", page=1, rank=i, sponsored=i == 0, raw={"i": i},
                 score={"score": i / 10, "verdict": "strong" if i > 5 else "weak", "signals": []})
        for i in range(9)
    ]  # fmt: skip
    records.append({**records[2], "rank": 42, "page": 2})  # the same listing twice in one batch
    seen = datetime(2026, 5, 1, tzinfo=UTC)
    bulk, rows = make_db("bulk"), make_db("rows")
    for database in (bulk, rows):
        with database.session() as s:
            repo.upsert_listing(
                s, _listing(listing_key="tokopedia:3", listing_id="3", title="old"), seen_at=seen
            )
    with bulk.session() as s:
        ids, scored = repo.persist_batch(s, records, sweep_run_id=None, scorer_version="v",
                                         lexicon_version_id=None, seen_at=seen)  # fmt: skip
    assert set(ids) == {f"tokopedia:{i}" for i in range(9)}
    assert scored == {f"tokopedia:{i}": (i / 10, "strong" if i > 5 else "weak") for i in range(9)}
    with rows.session() as s:
        for n, r in enumerate(records):
            listing_id, _ = repo.upsert_listing(s, r, seen_at=seen)
            sighting_id = repo.add_sighting(
                s, listing_id=listing_id, sweep_run_id=None, query=r["query"], page=r["page"], rank=r["rank"],
                sponsored=r["sponsored"], raw=r["raw"], seen_at=seen,
            )  # fmt: skip
            score = r["score"]
            if n == 9:
                continue  # the repeat sighting of tokopedia:2 with the same score: no second score row
            repo.add_score(s, listing_id=listing_id, sighting_id=sighting_id, value=score["score"],
                           verdict=score["verdict"], explanation=score, scorer_version="v")  # fmt: skip
    assert _snapshot(bulk) == _snapshot(rows)


def test_persist_batch_writes_a_score_once_per_run_unless_it_changes(db: Database) -> None:
    first = _listing(query="bal", page=1, rank=1, score={"score": 0.9, "verdict": "strong", "signals": []})
    again = {**first, "query": "thrift"}
    changed = {**first, "query": "kaos", "score": {"score": 0.5, "verdict": "candidate", "signals": []}}
    kwargs: dict[str, Any] = {"sweep_run_id": None, "scorer_version": "v", "lexicon_version_id": None}
    with db.session() as s:
        _, scored = repo.persist_batch(s, [first, again], **kwargs)
    assert scored == {first["listing_key"]: (0.9, "strong")}
    with db.session() as s:  # a later batch of the same run: the caller passes what it stored
        _, later = repo.persist_batch(s, [again], scored=scored, **kwargs)
        _, last = repo.persist_batch(s, [changed], scored=scored, **kwargs)
    assert later == {} and last == {first["listing_key"]: (0.5, "candidate")}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Sighting)) == 4
        assert [(r.value, r.verdict) for r in s.scalars(select(Score).order_by(Score.id))] == [
            (0.9, "strong"),
            (0.5, "candidate"),
        ]
        assert s.scalars(select(Listing)).one().verdict == "candidate"


def test_migrated_schema_matches_the_models(db: Database) -> None:
    """Alembic finds nothing to autogenerate: the migrations build exactly the models' schema on this
    backend (jsonb columns and partial indexes on PostgreSQL included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base
    from storage.schema_ops import include_object

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    assert diffs == []


def test_hostile_text_with_nul_and_odd_characters_round_trips(db: Database) -> None:
    """Sellers control titles: a NUL byte (refused by PostgreSQL text and jsonb), lone surrogates' cousins,
    right-to-left marks and emoji must neither fail the batch nor differ between backends."""
    title = "Bal\x00 Korea \u202eisi\u202c 300 pcs 👕 \\u0000"
    record = _listing(title=title, description="a\x00b", seller_name="Toko\x00Bal", raw={"t": "x\x00y"})
    record.update(query="bal", page=1, rank=1, sponsored=False,
                  score={"score": 0.9, "verdict": "strong", "signals": [{"term": "b\x00al"}]})  # fmt: skip
    with db.session() as s:
        repo.persist_batch(s, [record], sweep_run_id=None, scorer_version="v", lexicon_version_id=None)
    with db.session() as s:
        listing = s.scalars(select(Listing)).one()
        sighting = s.scalars(select(Sighting)).one()
        score = s.scalars(select(Score)).one()
    assert listing.title == "Bal\ufffd Korea \u202eisi\u202c 300 pcs 👕 \\u0000"
    assert listing.description == "a\ufffdb"
    assert listing.seller is not None and listing.seller.name == "Toko\ufffdBal"
    assert sighting.raw == {"t": "x\ufffdy"}
    assert score.explanation["signals"] == [{"term": "b\ufffdal"}]


def test_processes_starting_together_migrate_once(database_url: Callable[..., str]) -> None:
    """Workers, the console and the scheduler may start at the same moment against an empty database:
    one migrates while the others wait (an advisory lock on PostgreSQL, a lock file beside SQLite's
    database), then finds it at head."""
    url = database_url("race", migrated=False)
    run_concurrently(url, 4, lambda db, _n: db.migrate())
    db = Database(url)
    assert db.current_revision() is not None
    db.migrate()  # already at head: nothing to do
    db.dispose()


def test_concurrent_batches_of_the_same_listings_store_each_once(make_db: Callable[..., Database]) -> None:
    """Two sweeps (or queue workers) persisting overlapping listings at the same time: no batch fails on
    a duplicate key, every listing and seller is stored once, and every sighting is kept."""
    url = make_db("shared").url
    writers, batches = 4, 5

    def write(own: Database, w: int) -> None:
        for b in range(batches):
            records = [
                _listing(listing_key=f"tokopedia:{i}", listing_id=str(i), seller_id=str(i % 4),
                         contact_handles=[f"wa:62{w}"], query=f"w{w}b{b}", page=1, rank=i,
                         sponsored=False, score={"score": 0.5, "verdict": "candidate", "signals": []})
                for i in range(b, b + 12)
            ]  # fmt: skip
            with own.session() as s:
                repo.persist_batch(s, records, sweep_run_id=None, scorer_version="v", lexicon_version_id=None)

    run_concurrently(url, writers, write)
    db = Database(url)
    with db.session() as s:
        keys = s.scalars(select(Listing.listing_key)).all()
        assert len(keys) == len(set(keys)) == batches - 1 + 12
        assert s.scalar(select(func.count(Seller.id))) == 4
        assert s.scalar(select(func.count(Sighting.id))) == writers * batches * 12
        # every writer's contact handle was merged, none lost to a concurrent refresh
        handles = {h for row in s.scalars(select(Listing.contact_handles)) for h in row}
        assert handles == {f"wa:62{w}" for w in range(writers)}
    db.dispose()


def test_migration_0008_gives_captures_their_listing_key(database_url: Callable[..., str]) -> None:
    """Captures linked to a listing take its key; captures still waiting for a link take the key their
    metadata recorded; attempts without one stay without."""
    db = Database(database_url("old", migrated=False))
    db.migrate("0003")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO listings (id, listing_key, platform, platform_listing_id, url, title,"
                " description, contact_handles, extra_ids, first_seen, last_seen, relist_evidence) VALUES "
                "(1, 'tokopedia:1', 'tokopedia', '1', 'u', 't', '', '[]', '{}', :t, :t, '{}')"
            ),
            {"t": "2026-01-01 00:00:00"},
        )
        for cid, lid, observable, meta in (
            (1, 1, True, "{}"),
            (2, None, True, '{"listing_key": "shopee:9.9"}'),
            (3, None, False, "{}"),
        ):
            conn.execute(
                text(
                    "INSERT INTO captures (id, listing_id, purpose, url, observable, records, metadata_json,"
                    " captured_at) VALUES (:i, :l, 'sweep', 'u', :o, '[]', :m, :t)"
                ),
                {"i": cid, "l": lid, "o": observable, "m": meta, "t": "2026-01-01 00:00:00"},
            )
    db.migrate()
    with db.session() as s:
        assert [c.listing_key for c in s.scalars(select(Capture).order_by(Capture.id))] == [
            "tokopedia:1",
            "shopee:9.9",
            None,
        ]
    db.dispose()
