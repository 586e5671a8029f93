"""SQLAlchemy 2.0 typed models for the whole domain.

One migration chain (``storage/migrations``) creates these tables; later work adds columns, not
redesigns. Times are timezone-aware UTC everywhere (:class:`UTCDateTime`); WIB appears only in
human-facing exports. JSON columns hold lists/dicts that are read whole (variants, stats, explanations).

Tables by flow: terms → lexicon_versions → sweeps → sweep_runs → sellers/listings/sightings/scores →
captures → custody_entries → review_decisions → takedown_batches/takedown_items/batch_sends → rechecks;
plus findings (platform-blocked queries), job_runs and leases (scheduler) and users (console).

Nothing here imports Scrapy; spiders never import this module (data flows spiders → pipelines → storage).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware UTC datetimes (SQLite drops tzinfo otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON text on SQLite, jsonb on PostgreSQL (parsed once on write, comparable, indexable). jsonb does not keep
# object key order: code that needs an order sorts (custody hashes use canonical_json with sorted keys).
JSONColumn = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONColumn, list[Any]: JSONColumn}


# -- terms -------------------------------------------------------------------------------------


class Term(Base):
    __tablename__ = "terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200), unique=True)
    variants: Mapped[list[Any]] = mapped_column(default=list)
    category: Mapped[str] = mapped_column(String(40), default="standard")
    signal: Mapped[str] = mapped_column(String(40), default="NEUTRAL")
    strength: Mapped[str] = mapped_column(String(8), default="W")  # S, M, W, NEG
    status: Mapped[str] = mapped_column(
        String(16), default="active", index=True
    )  # active/proposed/retired/rejected
    provenance: Mapped[str] = mapped_column(String(16), default="seed")  # seed/discovered/analyst
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    approved_by: Mapped[str | None] = mapped_column(String(120), default=None)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    # discovery evidence for proposed terms: counts, lift, log-odds, example listing keys, source sweep run
    discovery: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LexiconVersion(Base):
    __tablename__ = "lexicon_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    term_count: Mapped[int] = mapped_column(default=0)
    snapshot: Mapped[list[Any]] = mapped_column(default=list)


# -- sweeps ------------------------------------------------------------------------------------


class Sweep(Base):
    """A sweep definition (what to search); scheduled or run by hand."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    platforms: Mapped[list[Any]] = mapped_column(default=list)
    terms_source: Mapped[str] = mapped_column(String(500), default="active")  # "active" or a file path
    max_pages: Mapped[int] = mapped_column(default=2)
    schedule: Mapped[str | None] = mapped_column(String(120), default=None)  # cron, Asia/Jakarta
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120), default="")


class SweepRun(Base):
    __tablename__ = "sweep_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"), default=None)
    kind: Mapped[str] = mapped_column(String(16), default="sweep")  # sweep / recheck / background / probe
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual / schedule / demo
    platforms: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # running / completed / partial / failed / interrupted (stopped by a signal, or its process died)
    status: Mapped[str] = mapped_column(String(16), default="running")
    lexicon_version_id: Mapped[int | None] = mapped_column(ForeignKey("lexicon_versions.id"), default=None)
    scorer_version: Mapped[str | None] = mapped_column(String(40), default=None)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per platform counts
    needs_attention: Mapped[list[Any]] = mapped_column(default=list)  # health-check messages
    queries: Mapped[list[Any]] = mapped_column(default=list)
    # the process running it (0006): a run whose process is gone is marked "interrupted"
    pid: Mapped[int | None] = mapped_column(default=None)
    host: Mapped[str | None] = mapped_column(String(200), default=None)
    start_token: Mapped[str | None] = mapped_column(String(40), default=None)


class Finding(Base):
    """Something a sweep observed that is not a listing, e.g. a platform blocking a keyword itself."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"), default=None)
    platform: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(40))  # query_blocked / needs_attention / ...
    query: Mapped[str | None] = mapped_column(String(300), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class BackgroundDoc(Base):
    """One ordinary listing from a background crawl (``SweepRun.kind == "background"``): the contrast side of
    emerging-term discovery. Only text is kept (no seller, no evidence); older crawls' rows are pruned."""

    __tablename__ = "background_docs"

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_run_id: Mapped[int] = mapped_column(ForeignKey("sweep_runs.id"), index=True)
    platform: Mapped[str] = mapped_column(String(24))
    listing_key: Mapped[str] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(String(300), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    seller_key: Mapped[str | None] = mapped_column(String(200), default=None)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- listings ----------------------------------------------------------------------------------


class Seller(Base):
    __tablename__ = "sellers"
    __table_args__ = (UniqueConstraint("platform", "platform_seller_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(24))
    platform_seller_id: Mapped[str] = mapped_column(String(120))
    name: Mapped[str | None] = mapped_column(String(300), default=None)
    city: Mapped[str | None] = mapped_column(String(120), default=None)
    shop_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    contact_handles: Mapped[list[Any]] = mapped_column(default=list)  # "wa:62812…", "ig:@handle"
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Listing(Base):
    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_key: Mapped[str] = mapped_column(String(200), unique=True)  # platform:platform_listing_id
    platform: Mapped[str] = mapped_column(String(24), index=True)
    platform_listing_id: Mapped[str] = mapped_column(String(160))
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int | None] = mapped_column(default=None)
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("sellers.id"), default=None, index=True)
    image_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    image_phash: Mapped[str | None] = mapped_column(String(32), default=None)
    contact_handles: Mapped[list[Any]] = mapped_column(default=list)
    extra_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)  # LIVE/REMOVED/HIDDEN/…
    # the latest score, denormalised for the review queue (Score keeps the history)
    score_value: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    verdict: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    relist_of_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id"), default=None)
    relist_evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # where the platform says the item ships from (crawler.items.Listing.ships_from_abroad) and its words
    ships_from_abroad: Mapped[bool | None] = mapped_column(Boolean, default=None)
    origin_facts: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))

    seller: Mapped[Seller | None] = relationship(lazy="joined")


class Sighting(Base):
    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"), default=None, index=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    query: Mapped[str | None] = mapped_column(String(300), default=None)
    page: Mapped[int | None] = mapped_column(default=None)
    rank: Mapped[int | None] = mapped_column(default=None)
    sponsored: Mapped[bool] = mapped_column(Boolean, default=False)
    source_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # volume facts of this sighting (crawler.intel.volume; 0009): price, the sold count as an interval
    # (sold_high None = a floor such as "100+"; all None = no sold field), stock, what one unit holds
    price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sold_low: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sold_high: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sold_precision: Mapped[str | None] = mapped_column(String(12), default=None)  # exact/rounded/at_least
    stock: Mapped[int | None] = mapped_column(BigInteger, default=None)
    unit_kind: Mapped[str | None] = mapped_column(String(8), default=None)  # bale / kg / piece
    unit_pieces: Mapped[int | None] = mapped_column(default=None)
    unit_kg: Mapped[float | None] = mapped_column(Float, default=None)


class Score(Base):
    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id"), default=None)
    value: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))  # strong / candidate / weak / clear
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scorer_version: Mapped[str] = mapped_column(String(40))
    model_version: Mapped[str | None] = mapped_column(String(60), default=None)  # None: rules alone
    lexicon_version_id: Mapped[int | None] = mapped_column(ForeignKey("lexicon_versions.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- evidence ----------------------------------------------------------------------------------


class Capture(Base):
    """One evidence capture: WARC records for a listing (or an UNOBSERVABLE attempt).

    ``listing_key`` is the listing's identity (``platform:listing_id``), written with the capture: the
    listing row may commit before or after it (another thread), so readers join on the key
    (``Capture.listing_key == Listing.listing_key``) and nothing links the two afterwards.
    """

    __tablename__ = "captures"
    __table_args__ = (Index("ix_captures_listing_key", "listing_key", "captured_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_key: Mapped[str | None] = mapped_column(String(200), default=None)
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"), default=None)
    purpose: Mapped[str] = mapped_column(String(16), default="sweep")  # sweep / recheck
    url: Mapped[str] = mapped_column(String(2000))
    observable: Mapped[bool] = mapped_column(Boolean, default=True)
    unobservable_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    warc_file: Mapped[str | None] = mapped_column(String(500), default=None)  # relative to the data dir
    warc_offset: Mapped[int | None] = mapped_column(default=None)
    warc_length: Mapped[int | None] = mapped_column(default=None)
    warc_sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # of the stored byte range
    records: Mapped[list[Any]] = mapped_column(default=list)  # [{type, uri, record_id, block_digest, …}]
    screenshot_sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # blob key
    screenshot_bytes: Mapped[int | None] = mapped_column(default=None)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustodyEntry(Base):
    """Append-only, hash-chained custody log. Never updated or deleted (see storage.custody)."""

    __tablename__ = "custody_entries"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))  # capture / review / export / recheck / verify / …
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(200))
    object_digest: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class CustodyChainEntry(Base):
    """An entry of a job's own custody chain (a distributed sweep's job; ``sweep-shard:ID:FENCE``).

    Hash-chained like :class:`CustodyEntry` (its hash also covers the chain's name) with its own sequence,
    so N workers append without sharing one lock; each chain's head is anchored into the global chain as an
    ``anchor`` entry when its job attempt ends (``storage.custody.anchor_chains``).
    """

    __tablename__ = "custody_chain_entries"

    chain: Mapped[str] = mapped_column(String(120), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(200))
    object_digest: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


# -- review and takedown -----------------------------------------------------------------------


class ReviewDecision(Base):
    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    score_id: Mapped[int | None] = mapped_column(ForeignKey("scores.id"), default=None)
    decision: Mapped[str] = mapped_column(String(16))  # approve / reject
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(120))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)  # the demo's labelled simulated reviewer
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class TakedownBatch(Base):
    __tablename__ = "takedown_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)  # stable, e.g. TTB-2026-0001
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    out_dir: Mapped[str | None] = mapped_column(String(1000), default=None)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    signature: Mapped[str | None] = mapped_column(String(200), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    items: Mapped[list[TakedownItem]] = relationship(back_populates="batch", order_by="TakedownItem.row_no")


class TakedownItem(Base):
    __tablename__ = "takedown_items"
    __table_args__ = (UniqueConstraint("batch_id", "listing_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("takedown_batches.id"), index=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    platform: Mapped[str] = mapped_column(String(24))
    row_no: Mapped[int] = mapped_column()
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("review_decisions.id"), default=None)
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id"), default=None)
    url: Mapped[str] = mapped_column(String(2000))
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the row as exported

    batch: Mapped[TakedownBatch] = relationship(back_populates="items")


class BatchSend(Base):
    """How and when a batch was sent to one platform; the send time starts the audit clock."""

    __tablename__ = "batch_sends"
    __table_args__ = (UniqueConstraint("batch_id", "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("takedown_batches.id"), index=True)
    platform: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(40))  # idea / portal / letter / meta_reporting / sandbox
    sent_at: Mapped[datetime] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(120), default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recheck(Base):
    __tablename__ = "rechecks"

    id: Mapped[int] = mapped_column(primary_key=True)
    takedown_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("takedown_items.id"), default=None, index=True
    )
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    round_days: Mapped[int | None] = mapped_column(default=None)  # 1, 3, 7, 30 (days after send)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    verdict: Mapped[str] = mapped_column(String(16))  # LIVE / REMOVED / HIDDEN / UNOBSERVABLE
    rule: Mapped[str] = mapped_column(String(120))
    signal: Mapped[str] = mapped_column(Text, default="")
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id"), default=None)
    attempt: Mapped[int] = mapped_column(default=1)


# -- scheduler and console ---------------------------------------------------------------------


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(String(120), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # running / ok / failed / skipped / timeout / interrupted (its scheduler or its process died)
    status: Mapped[str] = mapped_column(String(16), default="running")
    exit_code: Mapped[int | None] = mapped_column(default=None)
    coalesced: Mapped[int] = mapped_column(default=0)  # missed runs folded into this one
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"), default=None)
    stats_line: Mapped[str] = mapped_column(Text, default="")
    # the job's child process (0006) and the scheduler process that started it (``holder``: host:pid:token)
    pid: Mapped[int | None] = mapped_column(default=None)
    host: Mapped[str | None] = mapped_column(String(200), default=None)
    start_token: Mapped[str | None] = mapped_column(String(40), default=None)
    holder: Mapped[str | None] = mapped_column(String(200), default=None)


class SweepShard(Base):
    """One job of a distributed sweep (``tertib sweep --distributed``): a slice of the run's work.

    ``fence`` is the fencing token: each attempt takes the next value when it starts, and every transaction
    of the attempt's crawl checks it before committing (``storage.fencing``), so an attempt that was cut
    off and retried elsewhere cannot commit anything after the retry started.
    """

    __tablename__ = "sweep_shards"
    __table_args__ = (UniqueConstraint("sweep_run_id", "shard_no", name="uq_sweep_shards_run_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_run_id: Mapped[int] = mapped_column(ForeignKey("sweep_runs.id"), index=True)
    shard_no: Mapped[int] = mapped_column()
    work: Mapped[dict[str, Any]] = mapped_column(default=dict)  # crawler.work.SweepWork.to_dict()
    # queued / running / done / failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    fence: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)  # host:pid of the last attempt
    job_id: Mapped[int | None] = mapped_column(default=None)  # the queue's job id
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the crawl's health (SweepHealth)


class CaptureClaim(Base):
    """Which job of a distributed sweep captures a listing's evidence for the run (one capture per listing
    per run, as a single sweep takes): the first job to claim it; a newer attempt of the same job may
    take its own claim over (``crawler.run_context.RunEvidence.claim_capture``)."""

    __tablename__ = "capture_claims"

    sweep_run_id: Mapped[int] = mapped_column(ForeignKey("sweep_runs.id"), primary_key=True)
    listing_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    shard_id: Mapped[int] = mapped_column()
    fence: Mapped[int] = mapped_column()


class RateSlot(Base):
    """A platform's next free request time across every worker (``crawler.ratelimit``)."""

    __tablename__ = "rate_slots"

    platform: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_at: Mapped[datetime] = mapped_column()


class Lease(Base):
    """A named lock with an expiry, so a crashed holder does not block forever."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # analyst / staff / auditor / admin
    password_hash: Mapped[str] = mapped_column(String(300))
    api_token_hash: Mapped[str | None] = mapped_column(String(128), default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsoleSession(Base):
    """A console sign-in; the cookie holds a random token, this row its SHA-256 (revocable at once)."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()  # absolute end, whatever the activity
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)  # logout / disabled / …
    client: Mapped[str] = mapped_column(String(64), default="")  # address at sign-in
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class LoginLimit(Base):
    """Sign-in attempts per key (``account:NAME``, ``client:ADDRESS``, ``device:ID``) and the back-off.

    Changed only by compare-and-set updates (``console.limiter``), so concurrent attempts count exactly.
    """

    __tablename__ = "login_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_allowed_at: Mapped[datetime | None] = mapped_column(default=None)


class AccessLogEntry(Base):
    """A read worth knowing about (a download: WACZ, batch file, audit report) — who, what, when, from where.

    Reads are not custody events (the custody log records changes to evidence and decisions).
    """

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))  # download
    object_type: Mapped[str] = mapped_column(String(40))  # wacz / batch_file / audit_report
    object_id: Mapped[str] = mapped_column(String(500))
    object_digest: Mapped[str] = mapped_column(String(64), default="")
    client: Mapped[str] = mapped_column(String(64), default="")
    bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)  # files can pass 2 GiB


Index("ix_listings_verdict_score", Listing.verdict, Listing.score_value)
Index("ix_rechecks_item_round", Recheck.takedown_item_id, Recheck.round_days)
# 0002: console queue, seller history, relisting links, dashboard at 1M listings (bench/console_pages.py)
# partial (0003): relist_of_id is nearly always NULL, so a full index looked unselective and SQLite
# scanned every listing for "relistings of X"
Index(
    "ix_listings_relist_of",
    Listing.relist_of_id,
    sqlite_where=Listing.relist_of_id.is_not(None),
    postgresql_where=Listing.relist_of_id.is_not(None),
)
Index("ix_listings_seller_last_seen", Listing.seller_id, Listing.last_seen)
Index(
    "ix_review_decisions_listing_time",
    ReviewDecision.listing_id,
    ReviewDecision.decided_at,
    ReviewDecision.id,
)
Index("ix_scores_listing_time", Score.listing_id, Score.created_at, Score.id)
Index("ix_sweep_runs_kind_started", SweepRun.kind, SweepRun.started_at)
Index("ix_batch_sends_batch_sent", BatchSend.batch_id, BatchSend.sent_at)
Index("ix_rechecks_verdict_item_time", Recheck.verdict, Recheck.takedown_item_id, Recheck.checked_at)
# 0006: only running rows, so finding this host's dead runs at every command's start is one cheap seek
Index(
    "ix_sweep_runs_running",
    SweepRun.status,
    sqlite_where=SweepRun.status == "running",
    postgresql_where=SweepRun.status == "running",
)
Index(
    "ix_job_runs_running",
    JobRun.status,
    sqlite_where=JobRun.status == "running",
    postgresql_where=JobRun.status == "running",
)

# Tables listed by `tertib status`, in flow order.
STATUS_TABLES: tuple[type[Base], ...] = (
    Term,
    LexiconVersion,
    Sweep,
    SweepRun,
    Finding,
    BackgroundDoc,
    Seller,
    Listing,
    Sighting,
    Score,
    Capture,
    CustodyEntry,
    ReviewDecision,
    TakedownBatch,
    TakedownItem,
    BatchSend,
    Recheck,
    JobRun,
    User,
    ConsoleSession,
    AccessLogEntry,
)
