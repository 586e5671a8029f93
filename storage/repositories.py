"""Queries and writes the commands need, so no ORM object leaks into Scrapy code.

Callers pass plain data (dicts as produced by ``crawler.items.Listing.to_dict()``) and get plain data or ids
back where they cross into crawler code. Each function works inside the caller's session/transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import (
    STATUS_TABLES,
    Finding,
    JobRun,
    Listing,
    Score,
    Seller,
    Sighting,
    SweepRun,
)


def now() -> datetime:
    return datetime.now(UTC)


def table_counts(session: Session) -> dict[str, int]:
    """Row count per domain table, in flow order."""
    return {
        model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in STATUS_TABLES
    }


# -- sweep runs --------------------------------------------------------------------------------


def start_run(
    session: Session,
    *,
    platforms: Sequence[str],
    kind: str = "sweep",
    trigger: str = "manual",
    sweep_id: int | None = None,
    lexicon_version_id: int | None = None,
    scorer_version: str | None = None,
    queries: Sequence[str] = (),
) -> int:
    run = SweepRun(
        platforms=list(platforms),
        kind=kind,
        trigger=trigger,
        sweep_id=sweep_id,
        lexicon_version_id=lexicon_version_id,
        scorer_version=scorer_version,
        queries=list(queries),
        started_at=now(),
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session,
    run_id: int,
    *,
    status: str,
    stats: Mapping[str, Any],
    needs_attention: Sequence[str] = (),
) -> None:
    run = session.get(SweepRun, run_id)
    if run is None:
        raise KeyError(run_id)
    run.status = status
    run.stats = dict(stats)
    run.needs_attention = list(needs_attention)
    run.ended_at = now()


def record_finding(
    session: Session,
    *,
    platform: str,
    kind: str,
    query: str | None = None,
    detail: Mapping[str, Any] | None = None,
    sweep_run_id: int | None = None,
) -> int:
    finding = Finding(
        platform=platform, kind=kind, query=query, detail=dict(detail or {}), sweep_run_id=sweep_run_id
    )
    session.add(finding)
    session.flush()
    return finding.id


# -- sellers, listings, sightings, scores ----------------------------------------------------------


def upsert_seller(
    session: Session,
    *,
    platform: str,
    platform_seller_id: str,
    name: str | None = None,
    city: str | None = None,
    shop_url: str | None = None,
    contact_handles: Sequence[str] = (),
    seen_at: datetime | None = None,
) -> int:
    seen_at = seen_at or now()
    seller = session.scalars(
        select(Seller).where(Seller.platform == platform, Seller.platform_seller_id == platform_seller_id)
    ).first()
    if seller is None:
        seller = Seller(
            platform=platform,
            platform_seller_id=platform_seller_id,
            first_seen=seen_at,
            last_seen=seen_at,
            contact_handles=[],
        )
        session.add(seller)
    seller.name = name or seller.name
    seller.city = city or seller.city
    seller.shop_url = shop_url or seller.shop_url
    seller.last_seen = max(seller.last_seen, seen_at)
    merged = sorted(set(seller.contact_handles or []) | set(contact_handles))
    if merged != list(seller.contact_handles or []):
        seller.contact_handles = merged
    session.flush()
    return seller.id


def upsert_listing(
    session: Session, data: Mapping[str, Any], *, seen_at: datetime | None = None
) -> tuple[int, bool]:
    """Insert or update a listing from ``Listing.to_dict()`` data; returns (listing id, created)."""
    seen_at = seen_at or now()
    key = data["listing_key"]
    seller_id = None
    if data.get("seller_id"):
        seller_id = upsert_seller(
            session,
            platform=data["platform"],
            platform_seller_id=str(data["seller_id"]),
            name=data.get("seller_name"),
            city=data.get("seller_city"),
            shop_url=data.get("shop_url"),
            contact_handles=data.get("contact_handles") or (),
            seen_at=seen_at,
        )
    listing = session.scalars(select(Listing).where(Listing.listing_key == key)).first()
    created = listing is None
    if listing is None:
        listing = Listing(
            listing_key=key,
            platform=data["platform"],
            platform_listing_id=str(data["listing_id"]),
            first_seen=seen_at,
            last_seen=seen_at,
        )
        session.add(listing)
    listing.url = data["url"]
    listing.title = data.get("title") or listing.title or ""
    listing.description = data.get("description") or listing.description or ""
    listing.price = data.get("price") if data.get("price") is not None else listing.price
    listing.image_url = data.get("image_url") or listing.image_url
    listing.seller_id = seller_id or listing.seller_id
    if data.get("contact_handles"):
        listing.contact_handles = sorted(set(listing.contact_handles or []) | set(data["contact_handles"]))
    if data.get("extra_ids"):
        listing.extra_ids = {**(listing.extra_ids or {}), **data["extra_ids"]}
    listing.last_seen = max(listing.last_seen, seen_at) if not created else seen_at
    listing.last_status = data.get("last_status") or listing.last_status or "LIVE"
    session.flush()
    return listing.id, created


def add_sighting(
    session: Session,
    *,
    listing_id: int,
    sweep_run_id: int | None,
    query: str | None,
    page: int | None,
    rank: int | None,
    sponsored: bool = False,
    source_url: str | None = None,
    raw: Mapping[str, Any] | None = None,
    seen_at: datetime | None = None,
) -> int:
    sighting = Sighting(
        listing_id=listing_id,
        sweep_run_id=sweep_run_id,
        query=query,
        page=page,
        rank=rank,
        sponsored=sponsored,
        source_url=source_url,
        raw=dict(raw or {}),
        seen_at=seen_at or now(),
    )
    session.add(sighting)
    session.flush()
    return sighting.id


def add_score(
    session: Session,
    *,
    listing_id: int,
    value: float,
    verdict: str,
    explanation: Mapping[str, Any],
    scorer_version: str,
    lexicon_version_id: int | None = None,
    sighting_id: int | None = None,
) -> int:
    score = Score(
        listing_id=listing_id,
        sighting_id=sighting_id,
        value=value,
        verdict=verdict,
        explanation=dict(explanation),
        scorer_version=scorer_version,
        lexicon_version_id=lexicon_version_id,
    )
    session.add(score)
    listing = session.get(Listing, listing_id)
    if listing is not None:
        listing.score_value = value
        # a flagged relisting stays in the review queue whatever its words say now (relisting is the signal)
        if listing.relist_of_id is not None and verdict in ("weak", "clear"):
            verdict = "candidate"
        listing.verdict = verdict
    session.flush()
    return score.id


def latest_failed_jobs(session: Session, limit: int = 5) -> list[JobRun]:
    """Most recent failed job runs whose job has not succeeded since (for `tertib status`)."""
    failed = session.scalars(
        select(JobRun).where(JobRun.status.in_(("failed", "timeout"))).order_by(JobRun.started_at.desc())
    ).all()
    out: list[JobRun] = []
    for run in failed:
        later_ok = session.scalar(
            select(func.count())
            .select_from(JobRun)
            .where(JobRun.job_name == run.job_name, JobRun.status == "ok", JobRun.started_at > run.started_at)
        )
        if not later_ok and all(r.job_name != run.job_name for r in out):
            out.append(run)
        if len(out) >= limit:
            break
    return out


def link_capture(session: Session, *, capture_id: int, listing_id: int) -> None:
    """Attach a capture recorded before its listing row existed (evidence runs before persist)."""
    from storage.models import Capture

    capture = session.get(Capture, capture_id)
    if capture is not None and capture.listing_id is None:
        capture.listing_id = listing_id


def persist_batch(
    session: Session,
    records: Sequence[Mapping[str, Any]],
    *,
    sweep_run_id: int | None,
    scorer_version: str,
    lexicon_version_id: int | None,
    seen_at: datetime | None = None,
) -> dict[str, int]:
    """Store one batch of sightings (``Listing.to_dict()`` records) in a handful of statements.

    The same rows as :func:`upsert_listing` + :func:`add_sighting` + :func:`add_score` per record, but
    sellers and listings are looked up with one ``IN`` query each, new rows are inserted together, and
    sightings and scores go in as two ``executemany`` inserts — about 6 statements per batch instead of ~8 per
    listing. Returns ``{listing_key: listing id}``.
    """
    from sqlalchemy import insert, tuple_

    if not records:
        return {}
    seen_at = seen_at or now()

    # 1. Sellers: one lookup, new ones added, known ones refreshed.
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    handles: dict[tuple[str, str], set[str]] = {}
    for r in records:
        if r.get("seller_id"):
            key = (str(r["platform"]), str(r["seller_id"]))
            wanted[key] = r
            handles.setdefault(key, set()).update(r.get("contact_handles") or ())
    sellers: dict[tuple[str, str], Seller] = {}
    if wanted:
        for found in session.scalars(
            select(Seller).where(tuple_(Seller.platform, Seller.platform_seller_id).in_(list(wanted)))
        ):
            sellers[(found.platform, found.platform_seller_id)] = found
    for key, r in wanted.items():
        seller: Seller | None = sellers.get(key)
        if seller is None:
            seller = Seller(
                platform=key[0],
                platform_seller_id=key[1],
                first_seen=seen_at,
                last_seen=seen_at,
                contact_handles=[],
            )
            session.add(seller)
            sellers[key] = seller
        seller.name = r.get("seller_name") or seller.name
        seller.city = r.get("seller_city") or seller.city
        seller.shop_url = r.get("shop_url") or seller.shop_url
        seller.last_seen = max(seller.last_seen, seen_at)
        merged = sorted(set(seller.contact_handles or []) | handles[key])
        if merged != list(seller.contact_handles or []):
            seller.contact_handles = merged

    # 2. Listings: one lookup, then insert or update (the last record of a key in the batch wins).
    by_key = {str(r["listing_key"]): r for r in records}
    listings = {
        row.listing_key: row
        for row in session.scalars(select(Listing).where(Listing.listing_key.in_(list(by_key))))
    }
    for lkey, r in by_key.items():
        listing: Listing | None = listings.get(lkey)
        if listing is None:
            listing = Listing(
                listing_key=lkey,
                platform=r["platform"],
                platform_listing_id=str(r["listing_id"]),
                first_seen=seen_at,
                last_seen=seen_at,
                contact_handles=[],
                extra_ids={},
            )
            session.add(listing)
            listings[lkey] = listing
        listing.url = r["url"]
        listing.title = r.get("title") or listing.title or ""
        listing.description = r.get("description") or listing.description or ""
        if r.get("price") is not None:
            listing.price = r["price"]
        listing.image_url = r.get("image_url") or listing.image_url
        seller_key = (str(r["platform"]), str(r["seller_id"])) if r.get("seller_id") else None
        if seller_key is not None:
            listing.seller = sellers[seller_key]
        if r.get("contact_handles"):
            merged = sorted(set(listing.contact_handles or []) | set(r["contact_handles"]))
            if merged != list(listing.contact_handles or []):
                listing.contact_handles = merged
        if r.get("extra_ids"):
            listing.extra_ids = {**(listing.extra_ids or {}), **r["extra_ids"]}
        listing.last_seen = max(listing.last_seen, seen_at)
        listing.last_status = listing.last_status or "LIVE"
        score = r.get("score")
        if score is not None:
            verdict = str(score["verdict"])
            if listing.relist_of_id is not None and verdict in ("weak", "clear"):
                verdict = "candidate"  # a flagged relisting stays in the review queue (see add_score)
            listing.score_value = float(score["score"])
            listing.verdict = verdict
    session.flush()

    # 3. Sightings and scores: two executemany inserts (sighting ids come back in order for the scores).
    sighting_rows = [
        {
            "listing_id": listings[str(r["listing_key"])].id,
            "sweep_run_id": sweep_run_id,
            "seen_at": seen_at,
            "query": r.get("query"),
            "page": r.get("page"),
            "rank": r.get("rank"),
            "sponsored": bool(r.get("sponsored")),
            "source_url": r.get("source_url"),
            "raw": dict(r.get("raw") or {}),
        }
        for r in records
    ]
    sighting_ids = session.scalars(
        insert(Sighting).returning(Sighting.id, sort_by_parameter_order=True), sighting_rows
    ).all()
    score_rows = [
        {
            "listing_id": listings[str(r["listing_key"])].id,
            "sighting_id": sighting_id,
            "value": float(r["score"]["score"]),
            "verdict": str(r["score"]["verdict"]),
            "explanation": dict(r["score"]),
            "scorer_version": scorer_version,
            "lexicon_version_id": lexicon_version_id,
            "created_at": seen_at,
        }
        for r, sighting_id in zip(records, sighting_ids, strict=True)
        if r.get("score") is not None
    ]
    if score_rows:
        session.execute(insert(Score), score_rows)
    return {key: listing.id for key, listing in listings.items()}


def link_run_captures(session: Session, sweep_run_id: int) -> int:
    """Attach the run's captures that are still without a listing to it, by their recorded listing key.

    Evidence and persistence commit on different threads; whichever commits first, this post-crawl pass
    guarantees every capture ends up on its listing. Returns how many were linked.
    """
    from storage.models import Capture

    pending = session.scalars(
        select(Capture).where(Capture.sweep_run_id == sweep_run_id, Capture.listing_id.is_(None))
    ).all()
    keyed: dict[int, str] = {c.id: str((c.metadata_json or {}).get("listing_key") or "") for c in pending}
    keys = sorted({k for k in keyed.values() if k})
    ids = dict(
        session.execute(select(Listing.listing_key, Listing.id).where(Listing.listing_key.in_(keys))).all()
    )
    linked = 0
    for capture in pending:
        listing_id = ids.get(keyed[capture.id])
        if listing_id is not None:
            capture.listing_id = listing_id
            linked += 1
    return linked
