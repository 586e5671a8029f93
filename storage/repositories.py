"""Queries and writes the commands need, so no ORM object leaks into Scrapy code.

Callers pass plain data (dicts as produced by ``crawler.items.Listing.to_dict()``) and get plain data or ids
back where they cross into crawler code. Each function works inside the caller's session/transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.orm import Session

from storage import custody
from storage.bulk import insert_ids, table_of, update_many
from storage.locks import xact_locks
from storage.models import (
    STATUS_TABLES,
    Capture,
    Finding,
    JobRun,
    Listing,
    Recheck,
    Score,
    Seller,
    Sighting,
    SweepRun,
)
from storage.processes import this_process

# the volume columns of a sighting (crawler.intel.volume.VolumeFacts.to_row writes them)
SIGHTING_VOLUME_COLUMNS = (
    "price", "sold_low", "sold_high", "sold_precision", "stock", "unit_kind", "unit_pieces", "unit_kg",
)  # fmt: skip


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
    me = this_process()
    run = SweepRun(
        pid=me.pid,
        host=me.host,
        start_token=me.start_token,
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


def fail_if_running(session: Session, run_id: int) -> None:
    """Close a run the crawl left open (the reactor died before the health check ran) as failed."""
    run = session.get(SweepRun, run_id)
    if run is not None and run.status == "running":
        finish_run(session, run_id, status="failed", stats={"reason": "crawl ended abnormally"})


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
    if data.get("ships_from_abroad") is not None:  # a sighting that says nothing keeps what was said
        listing.ships_from_abroad = bool(data["ships_from_abroad"])
        listing.origin_facts = list(data.get("origin_facts") or [])
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
    model_version: str | None = None,
) -> int:
    score = Score(
        listing_id=listing_id,
        sighting_id=sighting_id,
        value=value,
        verdict=verdict,
        explanation=dict(explanation),
        scorer_version=scorer_version,
        model_version=model_version or explanation.get("model_version") or None,
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


def _write_rows(
    session: Session,
    table: Any,
    pending: Sequence[tuple[Any, Any, dict[str, Any], dict[str, Any]]],
    seen_at: datetime,
) -> dict[Any, int]:
    """Insert or refresh rows that carry ``first_seen``/``last_seen``; ids by key.

    ``pending``: (key, the stored row or None, the column values, the columns only a new row sets). New rows
    go in with one ``executemany``; a stored row is updated only in the columns that differ, ``last_seen``
    advanced to ``seen_at``.
    """
    ids: dict[Any, int] = {}
    new_keys: list[Any] = []
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for key, row, values, create in pending:
        if row is None:
            new_keys.append(key)
            new_rows.append({**create, **values, "first_seen": seen_at, "last_seen": seen_at})
            continue
        ids[key] = row.id
        values = {**values, "last_seen": max(row.last_seen, seen_at)}
        diff = {f"b_{name}": value for name, value in values.items() if value != getattr(row, name)}
        if diff:
            changed.append({"b_id": row.id, **diff})
    ids.update(zip(new_keys, insert_ids(session, table, new_rows), strict=True))
    update_many(session, table, changed)
    return ids


class Persisted(NamedTuple):
    """What :func:`persist_batch` stored: listing ids by key, and the scores written by key."""

    ids: dict[str, int]
    scored: dict[str, tuple[float, str]]


def persist_batch(
    session: Session,
    records: Sequence[Mapping[str, Any]],
    *,
    sweep_run_id: int | None,
    scorer_version: str,
    lexicon_version_id: int | None,
    seen_at: datetime | None = None,
    scored: Mapping[str, tuple[float, str]] | None = None,
    rerun_safe: bool = False,
) -> Persisted:
    """Store one batch of sightings (``Listing.to_dict()`` records) in a handful of Core statements.

    The same rows as :func:`upsert_listing` + :func:`add_sighting` + :func:`add_score` per record, without
    the ORM's per-object bookkeeping: sellers and listings are looked up with one ``IN`` query each, new
    ones inserted with one ``executemany`` each, known ones refreshed with one ``executemany`` ``UPDATE``
    each (only the rows whose values changed), and sightings and scores go in as two ``executemany``
    inserts.

    Scores: a ``Score`` row is written when a listing's score differs from the one stored before for it in
    this sweep run (``scored``: listing_key -> (value, verdict), the caller's memory of earlier batches;
    within the batch the earlier record counts), so a listing seen under five queries gets one score row
    per run and another only if its score changed (e.g. after its description was read). Readers use the
    latest score per listing, which this keeps exact.

    ``rerun_safe`` (a job of a distributed sweep, which may run twice: a retry after its worker died, other
    jobs of the same run seeing the same listing): sightings this run already stored (same listing, query,
    page and rank) are not stored again, and the score memory is what this run stored last in the database,
    so a job run twice stores nothing twice.

    Returns the listing ids by key and the (value, verdict) written per key in this batch (for the
    caller's ``scored`` once the transaction has committed).
    """
    if not records:
        return Persisted({}, {})
    seen_at = seen_at or now()
    sellers_t, listings_t = table_of(Seller), table_of(Listing)
    # Concurrent batches (sweeps, queue workers) on PostgreSQL: whoever writes a listing or seller first
    # holds its lock until commit, so the other reads the committed row below and refreshes it instead
    # of inserting it a second time (storage.locks).
    xact_locks(
        session,
        [f"listing:{r['listing_key']}" for r in records]
        + [f"seller:{r['platform']}:{r['seller_id']}" for r in records if r.get("seller_id")],
    )

    # 1. Sellers: one lookup; new ones inserted, known ones updated where something changed.
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    handles: dict[tuple[str, str], set[str]] = {}
    for r in records:
        if r.get("seller_id"):
            key = (str(r["platform"]), str(r["seller_id"]))
            wanted[key] = r
            handles.setdefault(key, set()).update(r.get("contact_handles") or ())
    seller_ids: dict[tuple[str, str], int] = {}
    if wanted:
        cols = ("id", "platform", "platform_seller_id", "name", "city", "shop_url", "contact_handles",
                "last_seen")  # fmt: skip
        known = {
            (row.platform, row.platform_seller_id): row
            for row in session.execute(
                select(*(sellers_t.c[c] for c in cols)).where(
                    tuple_(sellers_t.c.platform, sellers_t.c.platform_seller_id).in_(list(wanted))
                )
            )
        }
        pending: list[tuple[Any, Any, dict[str, Any], dict[str, Any]]] = []
        for key, r in wanted.items():
            row = known.get(key)
            old: Mapping[Any, Any] = row._mapping if row is not None else {}
            values = {
                "name": r.get("seller_name") or old.get("name"),
                "city": r.get("seller_city") or old.get("city"),
                "shop_url": r.get("shop_url") or old.get("shop_url"),
                "contact_handles": sorted(handles[key] | set(old.get("contact_handles") or ())),
            }
            pending.append((key, row, values, {"platform": key[0], "platform_seller_id": key[1]}))
        seller_ids = _write_rows(session, sellers_t, pending, seen_at)

    # 2. Listings: one lookup, then insert or update (the last record of a key in the batch wins).
    by_key = {str(r["listing_key"]): r for r in records}
    listing_cols = ("id", "listing_key", "url", "title", "description", "price", "image_url", "seller_id",
                    "contact_handles", "extra_ids", "last_seen", "last_status", "score_value", "verdict",
                    "relist_of_id", "ships_from_abroad", "origin_facts")  # fmt: skip
    known_listings = {
        row.listing_key: row
        for row in session.execute(
            select(*(listings_t.c[c] for c in listing_cols)).where(listings_t.c.listing_key.in_(list(by_key)))
        )
    }
    pending = []
    for lkey, r in by_key.items():
        row = known_listings.get(lkey)
        old = row._mapping if row is not None else {}
        seller_key = (str(r["platform"]), str(r["seller_id"])) if r.get("seller_id") else None
        old_handles = list(old.get("contact_handles") or [])
        old_extra = dict(old.get("extra_ids") or {})
        values = {
            "url": r["url"],
            "title": r.get("title") or old.get("title") or "",
            "description": r.get("description") or old.get("description") or "",
            "price": r["price"] if r.get("price") is not None else old.get("price"),
            "image_url": r.get("image_url") or old.get("image_url"),
            "seller_id": seller_ids[seller_key] if seller_key is not None else old.get("seller_id"),
            "contact_handles": sorted(set(old_handles) | set(r["contact_handles"]))
            if r.get("contact_handles") else old_handles,
            "extra_ids": {**old_extra, **r["extra_ids"]} if r.get("extra_ids") else old_extra,
            "last_status": old.get("last_status") or "LIVE",
            "score_value": old.get("score_value"),
            "verdict": old.get("verdict"),
        }  # fmt: skip
        if r.get("ships_from_abroad") is not None:  # a sighting that says nothing keeps what was said
            values["ships_from_abroad"] = bool(r["ships_from_abroad"])
            values["origin_facts"] = list(r.get("origin_facts") or [])
        elif row is None:  # new rows share one executemany: every row names the same columns
            values["ships_from_abroad"] = None
            values["origin_facts"] = []
        score = r.get("score")
        if score is not None:
            verdict = str(score["verdict"])
            if old.get("relist_of_id") is not None and verdict in ("weak", "clear"):
                verdict = "candidate"  # a flagged relisting stays in the review queue (see add_score)
            values["score_value"], values["verdict"] = float(score["score"]), verdict
        create = {"listing_key": lkey, "platform": r["platform"], "platform_listing_id": str(r["listing_id"])}
        pending.append((lkey, row, values, create))
    listing_ids: dict[str, int] = _write_rows(session, listings_t, pending, seen_at)

    if rerun_safe and sweep_run_id is not None:
        records, scored = _not_stored_yet(session, records, listing_ids, sweep_run_id, scored)

    # 3. Sightings and scores: two executemany inserts (sighting ids in row order for the scores).
    sighting_rows = [
        {
            "listing_id": listing_ids[str(r["listing_key"])],
            "sweep_run_id": sweep_run_id,
            "seen_at": seen_at,
            "query": r.get("query"),
            "page": r.get("page"),
            "rank": r.get("rank"),
            "sponsored": bool(r.get("sponsored")),
            "source_url": r.get("source_url"),
            "raw": dict(r.get("raw") or {}),
            # volume facts (crawler.intel.volume.VolumeFacts.to_row); every row names the same columns
            **{c: (r.get("volume") or {}).get(c) for c in SIGHTING_VOLUME_COLUMNS},
        }
        for r in records
    ]
    sighting_ids = insert_ids(session, table_of(Sighting), sighting_rows)
    written: dict[str, tuple[float, str]] = {}
    score_rows = []
    for r, sighting_id in zip(records, sighting_ids, strict=True):
        if r.get("score") is None:
            continue
        lkey = str(r["listing_key"])
        value = (float(r["score"]["score"]), str(r["score"]["verdict"]))
        if value == written.get(lkey, (scored or {}).get(lkey)):
            continue  # the same score as this run already stored for the listing
        written[lkey] = value
        score_rows.append(
            {
                "listing_id": listing_ids[lkey],
                "sighting_id": sighting_id,
                "value": value[0],
                "verdict": value[1],
                "explanation": dict(r["score"]),
                "scorer_version": scorer_version,
                "model_version": r["score"].get("model_version") or None,
                "lexicon_version_id": lexicon_version_id,
                "created_at": seen_at,
            }
        )
    if score_rows:
        session.execute(insert(table_of(Score)), score_rows)
    return Persisted(listing_ids, written)


def _not_stored_yet(
    session: Session,
    records: Sequence[Mapping[str, Any]],
    listing_ids: Mapping[str, int],
    sweep_run_id: int,
    scored: Mapping[str, tuple[float, str]] | None,
) -> tuple[list[Mapping[str, Any]], dict[str, tuple[float, str]]]:
    """The records whose sighting this run has not stored yet, and the run's stored scores by key."""
    sightings, scores = table_of(Sighting), table_of(Score)
    ids = sorted(set(listing_ids.values()))
    have = {
        (row.listing_id, row.query, row.page, row.rank)
        for row in session.execute(
            select(sightings.c.listing_id, sightings.c.query, sightings.c.page, sightings.c.rank).where(
                sightings.c.sweep_run_id == sweep_run_id, sightings.c.listing_id.in_(ids)
            )
        )
    }
    fresh = [
        r
        for r in records
        if (listing_ids[str(r["listing_key"])], r.get("query"), r.get("page"), r.get("rank")) not in have
    ]
    key_of = {lid: key for key, lid in listing_ids.items()}
    memory = dict(scored or {})
    for row in session.execute(
        select(scores.c.listing_id, scores.c.value, scores.c.verdict)
        .join(sightings, sightings.c.id == scores.c.sighting_id)
        .where(sightings.c.sweep_run_id == sweep_run_id, scores.c.listing_id.in_(ids))
        .order_by(scores.c.id)
    ):
        memory[key_of[row.listing_id]] = (float(row.value), str(row.verdict))  # the latest wins
    return fresh, memory


# -- the recheck ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecheckRow:
    """One recheck observation for the ledger: a :class:`storage.models.Recheck` row with the rule that
    decided its verdict and the capture that backs it (None without evidence or before it committed)."""

    listing_id: int
    listing_key: str
    verdict: str
    rule: str
    signal: str
    checked_at: datetime
    takedown_item_id: int | None = None
    round_days: int | None = None
    due_at: datetime | None = None
    attempt: int = 1
    capture_id: int | None = None


def record_rechecks(
    session: Session, rows: Sequence[RecheckRow], *, actor: str
) -> tuple[list[int], list[custody.EntrySpec]]:
    """Write the ledger rows and ``Listing.last_status`` (observed verdicts only: UNOBSERVABLE says
    nothing about the listing) in the caller's transaction.

    Returns the Recheck ids (in row order) and one ``recheck`` custody entry per row, for the caller to
    chain (the evidence recorder appends them after its captures' own, in the same transaction).
    """
    ids = insert_ids(
        session,
        table_of(Recheck),
        [
            {
                "takedown_item_id": row.takedown_item_id,
                "listing_id": row.listing_id,
                "round_days": row.round_days,
                "due_at": row.due_at,
                "checked_at": row.checked_at,
                "verdict": row.verdict,
                "rule": row.rule,
                "signal": row.signal[:2000],
                "capture_id": row.capture_id,
                "attempt": row.attempt,
            }
            for row in rows
        ],
    )
    update_many(
        session,
        table_of(Listing),
        [
            {"b_id": row.listing_id, "b_last_status": row.verdict}
            for row in rows
            if row.verdict != "UNOBSERVABLE"
        ],
    )
    specs = [
        custody.EntrySpec(
            actor=actor,
            action="recheck",
            object_type="recheck",
            object_id=row_id,
            details={
                "listing_key": row.listing_key,
                "verdict": row.verdict,
                "rule": row.rule,
                "capture_id": row.capture_id,
                "round_days": row.round_days,
                "checked_at": row.checked_at.isoformat(),
            },
        )
        for row, row_id in zip(rows, ids, strict=True)
    ]
    return ids, specs


# -- reads for the console ---------------------------------------------------------------------


def recent_sweep_runs(
    session: Session, kind: str | None = None, limit: int = 30, before_id: int | None = None
) -> list[SweepRun]:
    """Newest sweep runs first (by id: runs are numbered as they start); only ``kind`` (``sweep`` /
    ``recheck``) when given; only runs older than ``before_id`` when given (keyset paging)."""
    query = select(SweepRun).order_by(SweepRun.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(SweepRun.kind == kind)
    if before_id is not None:
        query = query.where(SweepRun.id < before_id)
    return list(session.scalars(query))


def recent_job_runs(session: Session, limit: int = 30, before_id: int | None = None) -> list[JobRun]:
    """Newest scheduler job runs first; only those older than ``before_id`` when given (keyset paging)."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(JobRun.id < before_id)
    return list(session.scalars(query))


def list_captures(
    session: Session,
    listing_id: int | None = None,
    limit: int = 100,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
) -> list[tuple[Capture, str | None]]:
    """Captures newest first with their listing's key (None when not linked); one listing's with
    ``listing_id``. Keyset paging: ``before_id`` gives the next older page, ``after_id`` the page of newer
    ones just above it (returned newest first too)."""
    query = select(Capture, Listing.listing_key).outerjoin(
        Listing, Listing.listing_key == Capture.listing_key
    )
    if listing_id is not None:
        query = query.where(Listing.id == listing_id)
    if after_id is not None:
        rows = session.execute(query.where(Capture.id > after_id).order_by(Capture.id).limit(limit)).all()
        return [(c, key) for c, key in reversed(rows)]
    if before_id is not None:
        query = query.where(Capture.id < before_id)
    return [(c, key) for c, key in session.execute(query.order_by(Capture.id.desc()).limit(limit)).all()]


def capture_with_listing(session: Session, capture_id: int) -> tuple[Capture, Listing | None] | None:
    """A capture and its listing, or None when there is no such capture."""
    capture = session.get(Capture, capture_id)
    if capture is None:
        return None
    listing = (
        session.scalars(select(Listing).where(Listing.listing_key == capture.listing_key)).first()
        if capture.listing_key
        else None
    )
    return capture, listing


def screenshot_is_evidence(session: Session, sha256: str) -> bool:
    """Whether some capture names this screenshot blob (the console serves no other blob)."""
    return session.scalar(select(Capture.id).where(Capture.screenshot_sha256 == sha256).limit(1)) is not None


def listings_by_keys(session: Session, keys: Sequence[str]) -> dict[str, Listing]:
    """Listings by ``platform:id`` key; unknown keys are left out."""
    if not keys:
        return {}
    return {
        row.listing_key: row for row in session.scalars(select(Listing).where(Listing.listing_key.in_(keys)))
    }
