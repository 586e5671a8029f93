"""Review queue: a named person approves or rejects each candidate before anything is exported.

Service functions (the web console reuses them; each works in the caller's session/transaction):

- :func:`review_queue` — candidates (``Listing.verdict`` ``strong``/``candidate``) that have no decision yet,
  highest score first. A listing's state is its *latest* decision (by ``decided_at``, then id): approving
  and later rejecting leaves it rejected, and the exporter skips it. ``order="uncertain"`` (active
  learning) also takes ``weak`` listings and puts first those the model is least sure about (score — the
  model's calibrated probability — closest to :data:`UNCERTAIN_AT`): a decision there teaches the next
  ``tertib model train`` the most.
- :func:`approve` / :func:`reject` — record a :class:`storage.models.ReviewDecision` per listing (linked to
  the listing's latest score) and append one custody entry per decision, actor = the reviewer.
- :func:`term_precision` — per term, how many decided listings whose latest score matched it were
  approved and rejected (``tertib terms list`` shows it as precision).
- :func:`review_card` — everything ``tertib review next`` shows for one listing.

The commands (``tertib review …``) are :mod:`crawler.review_cli`.

Settings: ``threshold_*`` decide verdicts upstream (the scorer); ``blob_dir`` locates screenshots;
``actor`` is not used for decisions — a decision always names its reviewer with ``--by``.
To add a rejection reason, add it to :class:`RejectReason` (the CLI, the console and the API read it).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from rich.text import Text
from sqlalchemy import Float, Integer, Select, and_, bindparam, exists, func, select
from sqlalchemy.orm import Session

from crawler.errors import NotFound, UsageError
from crawler.items import ListingKey
from storage import custody
from storage.blobs import BlobStore
from storage.models import Capture, Listing, ReviewDecision, Score, Seller

log = logging.getLogger(__name__)

QUEUE_VERDICTS: tuple[str, ...] = ("strong", "candidate")
UNCERTAIN_VERDICTS: tuple[str, ...] = ("strong", "candidate", "weak")
UNCERTAIN_AT = 0.5  # the calibrated probability at which the model knows least
ORDERS: tuple[str, ...] = ("score", "uncertain")


class RejectReason(StrEnum):
    """Why a candidate is not reported; the order is the reviewer's number keys (1-6) in the console."""

    LEGIT_PRELOVED = "legit_preloved"
    LEGIT_NEW = "legit_new"
    LOCAL_SECONDHAND = "local_secondhand"
    NOT_CLOTHING = "not_clothing"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    OTHER = "other"


REJECT_REASONS: tuple[str, ...] = tuple(reason.value for reason in RejectReason)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- shared queries (the exporter uses these too) ------------------------------------------------


def latest_decisions_subquery() -> Any:
    """Per listing its latest decision: ``listing_id, decision_id, decision, reviewer, decided_at``."""
    ranked = select(
        ReviewDecision.listing_id.label("listing_id"),
        ReviewDecision.id.label("decision_id"),
        ReviewDecision.decision.label("decision"),
        ReviewDecision.reviewer.label("reviewer"),
        ReviewDecision.decided_at.label("decided_at"),
        func.row_number()
        .over(
            partition_by=ReviewDecision.listing_id,
            order_by=(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc()),
        )
        .label("rn"),
    ).subquery("ranked_decisions")
    return (
        select(
            ranked.c.listing_id,
            ranked.c.decision_id,
            ranked.c.decision,
            ranked.c.reviewer,
            ranked.c.decided_at,
        )
        .where(ranked.c.rn == 1)
        .subquery("latest_decisions")
    )


def latest_scores_subquery() -> Any:
    """One row per listing: its latest score (``listing_id, score_id, explanation``)."""
    ranked = select(
        Score.listing_id.label("listing_id"),
        Score.id.label("score_id"),
        Score.explanation.label("explanation"),
        func.row_number()
        .over(partition_by=Score.listing_id, order_by=(Score.created_at.desc(), Score.id.desc()))
        .label("rn"),
    ).subquery("ranked_scores")
    return (
        select(ranked.c.listing_id, ranked.c.score_id, ranked.c.explanation)
        .where(ranked.c.rn == 1)
        .subquery("latest_scores")
    )


def resolve_listing_ids(session: Session, refs: Iterable[str | int]) -> list[int]:
    """Listing ids from ints, digit strings or listing keys (``platform:id``); unknown ones raise NotFound."""
    ids: list[int] = []
    missing: list[str] = []
    for ref in refs:
        text = str(ref).strip()
        if text.isdigit():
            listing_id = session.scalar(select(Listing.id).where(Listing.id == int(text)))
        else:
            try:
                key = ListingKey.parse(text)
            except ValueError:
                raise UsageError(f"not a listing id or key (platform:id): {text!r}") from None
            listing_id = session.scalar(select(Listing.id).where(Listing.listing_key == str(key)))
        if listing_id is None:
            missing.append(text)
        elif listing_id not in ids:
            ids.append(listing_id)
    if missing:
        raise NotFound(f"no such listing: {', '.join(missing)}")
    return ids


# -- the queue ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueItem:
    listing_id: int
    listing_key: str
    platform: str
    title: str
    price: int | None
    score: float | None
    verdict: str | None
    seller_name: str | None
    url: str
    first_seen: datetime


def _verdicts(order: str) -> tuple[str, ...]:
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}; use one of: {', '.join(ORDERS)}")
    return UNCERTAIN_VERDICTS if order == "uncertain" else QUEUE_VERDICTS


@cache
def _queue_statement(by_platform: bool, by_score: bool, order: str) -> Select[Listing, str | None]:
    """The queue query with bound parameters (``platform``, ``min_score``, ``limit``, ``offset``); built
    once per filter combination and order: constructing a statement costs more than running it on a warm
    database."""
    decided = exists().where(ReviewDecision.listing_id == Listing.id)
    query = (
        select(Listing, Seller.name)
        .outerjoin(Seller, Seller.id == Listing.seller_id)
        .where(Listing.verdict.in_(_verdicts(order)), ~decided)
    )
    if by_platform:
        query = query.where(Listing.platform == bindparam("platform"))
    if by_score:
        query = query.where(Listing.score_value >= bindparam("min_score"))
    return (
        query.order_by(Listing.score_value.desc(), Listing.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def review_queue(
    session: Session,
    platform: str | None = None,
    min_score: float | None = None,
    limit: int = 50,
    offset: int = 0,
    order: str = "score",
) -> list[QueueItem]:
    """Undecided candidates, highest score first (ties: oldest listing first); with
    ``order="uncertain"`` undecided weak-or-better listings, least certain first (see module docstring)."""
    if limit < 0 or offset < 0:
        raise UsageError("limit and offset must not be negative")
    if order == "uncertain":
        return _uncertain_queue(session, platform, min_score, limit, offset)
    query = _queue_statement(bool(platform), min_score is not None, order)
    params = {"platform": platform, "min_score": min_score, "limit": limit, "offset": offset}
    return [_queue_item(listing, name) for listing, name in session.execute(query, params).unique().all()]


@cache
def _uncertain_side(above: bool, by_platform: bool, by_score: bool) -> Select[Listing, str | None]:
    """One side of the uncertain order: scores from :data:`UNCERTAIN_AT` up (ascending), or below it
    (descending); either way nearest the midpoint first, ties by listing id. Each walks the score index
    from the midpoint outwards, so its cost grows with the position read, not with the queue."""
    decided = exists().where(ReviewDecision.listing_id == Listing.id)
    score = Listing.score_value
    query = (
        select(Listing, Seller.name)
        .outerjoin(Seller, Seller.id == Listing.seller_id)
        .where(Listing.verdict.in_(UNCERTAIN_VERDICTS), ~decided)
        .where(score >= UNCERTAIN_AT if above else score < UNCERTAIN_AT)
    )
    if by_platform:
        query = query.where(Listing.platform == bindparam("platform"))
    if by_score:
        query = query.where(score >= bindparam("min_score"))
    keys = (score.asc(), Listing.id.asc()) if above else (score.desc(), Listing.id.asc())
    return query.order_by(*keys).limit(bindparam("limit", type_=Integer))


def _uncertain_queue(
    session: Session, platform: str | None, min_score: float | None, limit: int, offset: int
) -> list[QueueItem]:
    """The queue ordered by distance from :data:`UNCERTAIN_AT`, then listing id: the two sides merged.
    The first ``offset + limit`` of the order lie within the first ``offset + limit`` of each side, and
    each side is already sorted by (distance, id), so the merge is exact. (One statement ordering by
    ``abs(score - 0.5)`` read every weak-or-better listing: ~0.8 s at 500,000 of them.)"""
    params = {"platform": platform, "min_score": min_score, "limit": offset + limit}
    sides = [
        [
            _queue_item(listing, name)
            for listing, name in session.execute(
                _uncertain_side(above, bool(platform), min_score is not None), params
            )
            .unique()
            .all()
        ]
        for above in (True, False)
    ]
    merged = heapq.merge(*sides, key=lambda item: (abs((item.score or 0.0) - UNCERTAIN_AT), item.listing_id))
    return list(itertools.islice(merged, offset, offset + limit))


@cache
def _keyset_statement(by_platform: bool, forward: bool) -> Select[Listing, str | None]:
    """The queue after (``forward``) or before a ``score``/``listing_id`` position, bound parameters."""
    decided = exists().where(ReviewDecision.listing_id == Listing.id)
    score, ident = bindparam("score", type_=Float), bindparam("listing_id", type_=Integer)
    # written as a range on the score plus an exclusion (not "score < s OR (score = s AND id > i)"): the
    # range lets the planner seek the score index (0.05 ms at 1M listings instead of a 500 ms scan)
    if forward:
        beyond = and_(Listing.score_value <= score, ~and_(Listing.score_value == score, Listing.id <= ident))
        order = (Listing.score_value.desc(), Listing.id.asc())
    else:
        beyond = and_(Listing.score_value >= score, ~and_(Listing.score_value == score, Listing.id >= ident))
        order = (Listing.score_value.asc(), Listing.id.desc())
    query = (
        select(Listing, Seller.name)
        .outerjoin(Seller, Seller.id == Listing.seller_id)
        .where(Listing.verdict.in_(QUEUE_VERDICTS), ~decided, beyond)
    )
    if by_platform:
        query = query.where(Listing.platform == bindparam("platform"))
    return query.order_by(*order).limit(bindparam("limit", type_=Integer))


def review_queue_from(
    session: Session,
    position: tuple[float, int],
    *,
    platform: str | None = None,
    backwards: bool = False,
    limit: int = 50,
) -> list[QueueItem]:
    """Keyset paging of the queue (score order): the ``limit`` candidates right after ``position`` (score,
    listing id) in queue order — or right before it with ``backwards`` (still returned in queue order).
    Costs the same however deep the position is, unlike an offset."""
    params = {"score": position[0], "listing_id": position[1], "platform": platform, "limit": limit}
    rows = session.execute(_keyset_statement(bool(platform), not backwards), params).unique().all()
    items = [_queue_item(listing, seller_name) for listing, seller_name in rows]
    return items[::-1] if backwards else items


def _queue_item(listing: Listing, seller_name: str | None) -> QueueItem:
    return QueueItem(
        listing_id=listing.id,
        listing_key=listing.listing_key,
        platform=listing.platform,
        title=listing.title,
        price=listing.price,
        score=listing.score_value,
        verdict=listing.verdict,
        seller_name=seller_name,
        url=listing.url,
        first_seen=listing.first_seen,
    )


def queue_size(
    session: Session, platform: str | None = None, min_score: float | None = None, order: str = "score"
) -> int:
    """How many candidates wait; counts ids only (no seller join), ~10x faster at 100k candidates."""
    decided = exists().where(ReviewDecision.listing_id == Listing.id)
    query = select(func.count(Listing.id)).where(Listing.verdict.in_(_verdicts(order)), ~decided)
    if platform:
        query = query.where(Listing.platform == platform)
    if min_score is not None:
        query = query.where(Listing.score_value >= min_score)
    return int(session.scalar(query) or 0)


_COUNTER_KEY = select(
    select(func.max(ReviewDecision.id)).scalar_subquery(), select(func.max(Score.id)).scalar_subquery()
)


class QueueCounter:
    """:func:`queue_size` remembered until a decision or a new score lands.

    Counting 100,000 candidates costs ~50 ms; the key is (platform, newest decision id, newest score id),
    and both ids only grow, so a cached count is exact, not a time-to-live guess. Thread-safe enough for a
    web server: a race computes the same count twice.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self._counts: dict[tuple[str | None, str, int, int], int] = {}
        self._max = max_entries

    def size(self, session: Session, platform: str | None = None, order: str = "score") -> int:
        decision_id, score_id = session.execute(_COUNTER_KEY).one()
        key = (platform, order, int(decision_id or 0), int(score_id or 0))
        count = self._counts.get(key)
        if count is None:
            if len(self._counts) > self._max:
                self._counts.clear()
            count = self._counts[key] = queue_size(session, platform, order=order)
        return count


# -- decisions ---------------------------------------------------------------------------------


def _decide(
    session: Session,
    listing_ids: Sequence[int | str],
    *,
    decision: str,
    by: str,
    reason: str | None,
    note: str,
    simulated: bool,
    at: datetime | None,
) -> list[int]:
    by = (by or "").strip()
    if not by:
        raise UsageError("a decision needs the reviewer's name (--by NAME)")
    if not listing_ids:
        raise UsageError("no listing ids given")
    ids = resolve_listing_ids(session, listing_ids)
    at = at or _utcnow()
    latest_score = latest_scores_subquery()
    score_ids: dict[int, int] = dict(
        session.execute(
            select(latest_score.c.listing_id, latest_score.c.score_id).where(
                latest_score.c.listing_id.in_(ids)
            )
        ).all()
    )
    out: list[int] = []
    for listing_id in ids:
        listing = session.get(Listing, listing_id)
        assert listing is not None  # resolved above
        row = ReviewDecision(
            listing_id=listing_id,
            score_id=score_ids.get(listing_id),
            decision=decision,
            reason=reason,
            note=note or "",
            reviewer=by,
            simulated=simulated,
            decided_at=at,
        )
        session.add(row)
        session.flush()
        custody.append(
            session,
            actor=by,
            action="review",
            object_type="listing",
            object_id=listing.listing_key,
            object_digest=custody.row_digest(custody.decision_fields(row)),
            details={
                "decision": decision,
                "decision_id": row.id,
                "listing_id": listing_id,
                "reason": reason,
                "note": note or "",
                "score_id": row.score_id,
                "score": listing.score_value,
                "simulated": simulated,
            },
            at=at,
        )
        out.append(row.id)
    log.info("%s %d listing(s) by %s", decision, len(out), by)
    return out


def approve(
    session: Session,
    listing_ids: Sequence[int | str],
    by: str,
    note: str = "",
    simulated: bool = False,
    *,
    at: datetime | None = None,
) -> list[int]:
    """Approve listings for takedown; returns the new decision ids (one custody entry each)."""
    return _decide(
        session, listing_ids, decision="approve", by=by, reason=None, note=note, simulated=simulated, at=at
    )


def reject(
    session: Session,
    listing_ids: Sequence[int | str],
    by: str,
    reason: str,
    note: str = "",
    *,
    simulated: bool = False,
    at: datetime | None = None,
) -> list[int]:
    """Reject listings with one of :data:`REJECT_REASONS`; a later rejection overrides an approval."""
    if reason not in REJECT_REASONS:
        raise UsageError(f"unknown reason {reason!r}; use one of: {', '.join(REJECT_REASONS)}")
    return _decide(
        session, listing_ids, decision="reject", by=by, reason=reason, note=note, simulated=simulated, at=at
    )


# -- reviewer statistics -----------------------------------------------------------------------


def signal_terms(explanation: dict[str, Any] | None) -> list[str]:
    """Distinct terms of a score explanation, in span order."""
    seen: list[str] = []
    for signal in (explanation or {}).get("signals") or []:
        term = signal.get("term") if isinstance(signal, dict) else None
        if term and term not in seen:
            seen.append(str(term))
    return seen


def term_precision(session: Session) -> dict[str, tuple[int, int]]:
    """``{term: (approved, rejected)}`` over listings' latest decisions and latest scores' signals.

    Each listing counts once per term. Precision is ``approved / (approved + rejected)``.
    """
    decisions = latest_decisions_subquery()
    scores = latest_scores_subquery()
    rows = session.execute(
        select(decisions.c.decision, scores.c.explanation).join(
            scores, scores.c.listing_id == decisions.c.listing_id
        )
    )
    stats: dict[str, list[int]] = {}
    for decision, explanation in rows:
        for term in signal_terms(explanation):
            counts = stats.setdefault(term, [0, 0])
            counts[0 if decision == "approve" else 1] += 1
    return {term: (a, r) for term, (a, r) in sorted(stats.items())}


# -- one listing, for `review next` ---------------------------------------------------------------


@dataclass(slots=True)
class ReviewCard:
    listing_id: int
    listing_key: str
    platform: str
    url: str
    title: str
    text: str
    price: int | None
    score: float | None
    verdict: str | None
    seller: str
    signals: list[dict[str, Any]] = field(default_factory=list)
    screenshot: Path | None = None
    relist_parent: str | None = None
    # the learned model's part of the score (model_version, rule_score, probability, features, product);
    # empty for scores made by the rules alone
    model: dict[str, Any] = field(default_factory=dict)


def screenshot_path(blob_dir: Path, sha256: str) -> Path:
    """Where the evidence blob store keeps a screenshot (``storage.blobs.BlobStore`` layout)."""
    return BlobStore(blob_dir).path(sha256)


_LATEST_EXPLANATION = (
    select(Score.explanation)
    .where(Score.listing_id == bindparam("listing_id"))
    .order_by(Score.created_at.desc(), Score.id.desc())
    .limit(1)
)
_LATEST_SCREENSHOT = (
    select(Capture.screenshot_sha256)
    .where(Capture.listing_key == bindparam("listing_key"), Capture.observable.is_(True))
    .order_by(Capture.captured_at.desc(), Capture.id.desc())
    .limit(1)
)


def review_card(session: Session, listing_id: int, blob_dir: Path) -> ReviewCard:
    listing = session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"no such listing: {listing_id}")
    explanation = session.scalar(_LATEST_EXPLANATION, {"listing_id": listing_id})
    sha = session.scalar(_LATEST_SCREENSHOT, {"listing_key": listing.listing_key})
    shot = screenshot_path(blob_dir, sha) if sha else None
    parent = session.get(Listing, listing.relist_of_id) if listing.relist_of_id else None
    seller = listing.seller
    seller_text = (
        f"{seller.name or '?'} ({seller.platform_seller_id}{', ' + seller.city if seller.city else ''})"
        if seller
        else "unknown seller"
    )
    text = f"{listing.title}\n{listing.description}" if listing.description else listing.title
    return ReviewCard(
        listing_id=listing.id,
        listing_key=listing.listing_key,
        platform=listing.platform,
        url=listing.url,
        title=listing.title,
        text=text,
        price=listing.price,
        score=listing.score_value,
        verdict=listing.verdict,
        seller=seller_text,
        signals=list((explanation or {}).get("signals") or []),
        model={
            k: (explanation or {})[k]
            for k in ("model_version", "rule_score", "probability", "features", "product")
            if (explanation or {}).get(k) is not None
        },
        screenshot=shot,
        relist_parent=f"{parent.listing_key} {parent.url}" if parent else None,
    )


def get_listing(session: Session, listing_id: int) -> Listing:
    listing = session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"no such listing: {listing_id}")
    return listing


# a correlated lookup per row: a window over every decision costs a full scan at scale
_LATEST_DECISION = (
    select(ReviewDecision.decision)
    .where(ReviewDecision.listing_id == Listing.id)
    .order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc())
    .limit(1)
    .correlate(Listing)
    .scalar_subquery()
)
_SELLER_HISTORY = (
    select(Listing, _LATEST_DECISION)
    .where(Listing.seller_id == bindparam("seller_id"), Listing.id != bindparam("listing_id"))
    .order_by(Listing.last_seen.desc())
    .limit(bindparam("limit", type_=Integer))
)
_RELISTED_AS = (
    select(Listing)
    .where(Listing.relist_of_id == bindparam("listing_id"))
    .limit(bindparam("limit", type_=Integer))
)


def seller_history(session: Session, listing: Listing, limit: int = 10) -> list[tuple[Listing, str | None]]:
    """The seller's other listings, newest first, each with its latest decision (or None)."""
    if listing.seller_id is None:
        return []
    params = {"seller_id": listing.seller_id, "listing_id": listing.id, "limit": limit}
    return [(row, decision) for row, decision in session.execute(_SELLER_HISTORY, params).all()]


def relisting(session: Session, listing: Listing, limit: int = 10) -> tuple[Listing | None, list[Listing]]:
    """(the listing this one relists, the listings that relist this one)."""
    parent = session.get(Listing, listing.relist_of_id) if listing.relist_of_id else None
    children = list(session.scalars(_RELISTED_AS, {"listing_id": listing.id, "limit": limit}))
    return parent, children


def list_decisions(session: Session, listing_id: int | None = None, limit: int = 100) -> list[ReviewDecision]:
    """Review decisions, newest first; only one listing's with ``listing_id``."""
    query = select(ReviewDecision).order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc())
    if listing_id is not None:
        query = query.where(ReviewDecision.listing_id == listing_id)
    return list(session.scalars(query.limit(limit)))


def highlight_signals(text: str, signals: Sequence[dict[str, Any]], context: int = 40) -> list[Text]:
    """One Rich line per signal: the matched span in bold with ``context`` characters either side."""
    lines: list[Text] = []
    flat = text.replace("\n", " ")
    for signal in signals:
        span = signal.get("span") or []
        term = str(signal.get("term", ""))
        if len(span) == 2 and 0 <= int(span[0]) <= int(span[1]) <= len(flat):
            a, b = int(span[0]), int(span[1])
        else:  # no usable span: find the term itself
            a = flat.lower().find(term.lower())
            if a < 0:
                lines.append(Text(f"{term}  (weight {signal.get('weight', '?')})"))
                continue
            b = a + len(term)
        lo, hi = max(0, a - context), min(len(flat), b + context)
        line = Text("…" if lo else "")
        line.append(flat[lo:a])
        weight = float(signal.get("weight", 0) or 0)
        line.append(flat[a:b], style="bold red" if weight > 0 else "bold green")
        line.append(flat[b:hi])
        line.append("…" if hi < len(flat) else "")
        line.append(f"   [{term}, {weight:+.2f}]", style="dim")
        lines.append(line)
    return lines


def format_price(price: int | None) -> str:
    return "-" if price is None else "Rp" + f"{price:,}".replace(",", ".")
