"""Which takedown items need a recheck now, and for which round.

The audit clock of an item starts at its batch's send time to the item's platform
(:class:`storage.models.BatchSend` ``sent_at``). Round ``d`` (days, from the ``recheck_days`` setting,
``TERTIB_RECHECK_DAYS``, default ``1,3,7,30``) is *reached* when ``now >= sent_at + d days``.

Rules (:func:`plan_item`, one item at a time, so the ledger alone decides):

1. Only the latest reached round is fetched. Earlier rounds that were never checked are *missed* (the past
   cannot be observed now); a conclusive verdict in a later round closes every earlier round.
2. A round is done when it has a conclusive verdict (LIVE, REMOVED or HIDDEN).
3. UNOBSERVABLE (block, captcha, login wall, timeout, 5xx) is never a verdict about the listing: the round
   stays open and is retried with ``attempt`` + 1, at most :data:`MAX_ATTEMPTS` times per round; after that
   the item waits for the next round. UNOBSERVABLE is never counted as removed (see
   :mod:`crawler.audit.report`).
4. An item already REMOVED in an earlier round needs no fetch: the reached round is recorded as satisfied by
   a ``Recheck`` row with ``rule = "audit.removed_earlier"``, ``attempt = 0`` (no fetch), the earlier
   capture and a custody entry (:func:`record_satisfied`). Time-to-removal always uses the *first*
   REMOVED row, so these rows never change the figures.

``due_targets(session, now, batch_id=None)`` returns the fetch list as ``crawler.items.RecheckTarget``
objects; ``batch_targets(session, batch_id, now)`` rechecks every item of one batch now (``tertib recheck
--batch``), with the round set to the latest reached round or ``None``.

Extend: a per-platform retry bound or a different round policy belongs in :func:`plan_item`; the CLI, the
scheduler and the report only read its result.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.errors import NotFound
from crawler.items import RecheckTarget, Verdict
from storage import custody
from storage.models import BatchSend, Listing, Recheck, TakedownBatch, TakedownItem

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # UNOBSERVABLE fetches per round before the item waits for the next round
CONCLUSIVE = frozenset({Verdict.LIVE.value, Verdict.REMOVED.value, Verdict.HIDDEN.value})
RULE_REMOVED_EARLIER = "audit.removed_earlier"


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """What the ledger says one takedown item needs at ``now``."""

    takedown_item_id: int
    listing_id: int
    platform: str
    sent_at: datetime | None
    round_days: int | None  # the latest reached round (None: not sent, or no round reached yet)
    due_at: datetime | None
    action: str  # "fetch" | "satisfy" | "done" | "waiting" | "exhausted" | "not_sent"
    attempt: int = 1
    removed_by: int | None = None  # the Recheck id of the first REMOVED verdict (for "satisfy")


# A round is checked just before its deadline, not after it: the T+1 check must see the listing as it is at
# the 1×24 h mark (Permenkominfo 5/2020 Pasal 14), or "removed within 24 h" could never be observed.
DEADLINE_LEAD = timedelta(minutes=15)


def reached_round(sent_at: datetime, now: datetime, days: Sequence[int]) -> int | None:
    """The latest round ``d`` with ``sent_at + d days - DEADLINE_LEAD <= now``, or None."""
    reached = [d for d in sorted(days) if sent_at + timedelta(days=d) - DEADLINE_LEAD <= now]
    return reached[-1] if reached else None


def plan_item(
    item_id: int,
    listing_id: int,
    platform: str,
    sent_at: datetime | None,
    rechecks: Iterable[Recheck],
    *,
    now: datetime,
    days: Sequence[int],
    max_attempts: int = MAX_ATTEMPTS,
) -> ItemPlan:
    """Apply the module's rules to one item and its recheck rows."""
    rows = sorted(rechecks, key=lambda r: (r.checked_at, r.id or 0))
    if sent_at is None:
        return ItemPlan(item_id, listing_id, platform, None, None, None, "not_sent")
    current = reached_round(sent_at, now, days)
    if current is None:
        return ItemPlan(item_id, listing_id, platform, sent_at, None, None, "waiting")
    due_at = sent_at + timedelta(days=current)
    base = dict(
        takedown_item_id=item_id,
        listing_id=listing_id,
        platform=platform,
        sent_at=sent_at,
        round_days=current,
        due_at=due_at,
    )
    in_round = [r for r in rows if r.round_days == current]
    if any(r.verdict in CONCLUSIVE for r in in_round):
        return ItemPlan(**base, action="done")  # type: ignore[arg-type]
    later = [r for r in rows if r.round_days is not None and r.round_days > current]
    if any(r.verdict in CONCLUSIVE for r in later):
        return ItemPlan(**base, action="done")  # type: ignore[arg-type]
    # removed and not seen back since: the start of the latest run of REMOVED verdicts
    first_removed = None
    for r in rows:
        if r.verdict == Verdict.REMOVED.value:
            first_removed = first_removed or r
        elif r.verdict in CONCLUSIVE:
            first_removed = None  # seen LIVE/HIDDEN again after a removal: reinstated
    if first_removed is not None:
        return ItemPlan(**base, action="satisfy", attempt=0, removed_by=first_removed.id)  # type: ignore[arg-type]
    tries = sum(1 for r in in_round if r.verdict == Verdict.UNOBSERVABLE.value and r.attempt > 0)
    if tries >= max_attempts:
        return ItemPlan(**base, action="exhausted", attempt=tries)  # type: ignore[arg-type]
    return ItemPlan(**base, action="fetch", attempt=tries + 1)  # type: ignore[arg-type]


def resolve_batch(session: Session, ref: str | int) -> TakedownBatch:
    """A batch by number (``TTB-2026-0001``) or database id; :class:`NotFound` otherwise."""
    text = str(ref).strip()
    batch = session.scalars(select(TakedownBatch).where(TakedownBatch.number == text)).first()
    if batch is None and text.isascii() and text.isdigit() and len(text) < 18:
        batch = session.get(TakedownBatch, int(text))
    if batch is None:
        raise NotFound(f"no such batch: {text}")
    return batch


def _sends(session: Session, batch_id: int | None) -> dict[tuple[int, str], datetime]:
    query = select(BatchSend)
    if batch_id is not None:
        query = query.where(BatchSend.batch_id == batch_id)
    return {(s.batch_id, s.platform): s.sent_at for s in session.scalars(query)}


def plan(
    session: Session,
    now: datetime,
    *,
    days: Sequence[int],
    batch_id: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[ItemPlan]:
    """One :class:`ItemPlan` per takedown item (of one batch, or of every batch), in item order."""
    sends = _sends(session, batch_id)
    query = select(TakedownItem).order_by(TakedownItem.batch_id, TakedownItem.row_no, TakedownItem.id)
    if batch_id is not None:
        query = query.where(TakedownItem.batch_id == batch_id)
    items = list(session.scalars(query))
    by_item: dict[int, list[Recheck]] = defaultdict(list)
    ids = [i.id for i in items]
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for row in session.scalars(select(Recheck).where(Recheck.takedown_item_id.in_(part))):
            assert row.takedown_item_id is not None
            by_item[row.takedown_item_id].append(row)
    return [
        plan_item(
            item.id,
            item.listing_id,
            item.platform,
            sends.get((item.batch_id, item.platform)),
            by_item.get(item.id, []),
            now=now,
            days=days,
            max_attempts=max_attempts,
        )
        for item in items
    ]


def _target(session: Session, p: ItemPlan, *, round_days: int | None = None) -> RecheckTarget:
    listing = session.get(Listing, p.listing_id)
    if listing is None:  # a foreign key makes this impossible; keep the error readable anyway
        raise NotFound(f"takedown item {p.takedown_item_id} points at a missing listing {p.listing_id}")
    item = session.get(TakedownItem, p.takedown_item_id)
    url = listing.url or (item.url if item is not None else "")
    return RecheckTarget(
        listing_id=listing.id,
        listing_key=listing.listing_key,
        platform=listing.platform,
        url=url,
        takedown_item_id=p.takedown_item_id,
        round_days=p.round_days if round_days is None else round_days,
        due_at=p.due_at,
        attempt=max(1, p.attempt),
    )


def due_targets(
    session: Session,
    now: datetime,
    batch_id: int | None = None,
    *,
    days: Sequence[int] = (1, 3, 7, 30),
    max_attempts: int = MAX_ATTEMPTS,
) -> list[RecheckTarget]:
    """Targets whose reached round has no conclusive verdict yet (retries of UNOBSERVABLE included)."""
    plans = plan(session, now, days=days, batch_id=batch_id, max_attempts=max_attempts)
    return [_target(session, p) for p in plans if p.action == "fetch"]


def batch_targets(
    session: Session, batch_id: int, now: datetime, *, days: Sequence[int] = (1, 3, 7, 30)
) -> list[RecheckTarget]:
    """Every item of one batch, now: round = the latest reached round (or None), attempt counted on."""
    if session.get(TakedownBatch, batch_id) is None:
        raise NotFound(f"no such batch: {batch_id}")
    out = []
    for p in plan(session, now, days=days, batch_id=batch_id, max_attempts=10**9):
        attempt = 1
        if p.round_days is not None:
            attempt += len(
                session.scalars(
                    select(Recheck.id).where(
                        Recheck.takedown_item_id == p.takedown_item_id,
                        Recheck.round_days == p.round_days,
                        Recheck.attempt > 0,
                    )
                ).all()
            )
        out.append(dataclasses.replace(_target(session, p), attempt=attempt))
    return out


def record_satisfied(session: Session, now: datetime, *, days: Sequence[int], actor: str) -> int:
    """Write the ``audit.removed_earlier`` rows for reached rounds of items already removed; returns count."""
    written = 0
    for p in plan(session, now, days=days):
        if p.action != "satisfy" or p.removed_by is None:
            continue
        first = session.get(Recheck, p.removed_by)
        assert first is not None
        row = Recheck(
            takedown_item_id=p.takedown_item_id,
            listing_id=p.listing_id,
            round_days=p.round_days,
            due_at=p.due_at,
            checked_at=now,
            verdict=Verdict.REMOVED.value,
            rule=RULE_REMOVED_EARLIER,
            signal=f"removed at recheck #{first.id} ({first.rule}, {first.checked_at.isoformat()})",
            capture_id=first.capture_id,
            attempt=0,
        )
        session.add(row)
        session.flush()
        custody.append(
            session,
            actor=actor,
            action="recheck",
            object_type="recheck",
            object_id=str(row.id),
            details={
                "takedown_item_id": p.takedown_item_id,
                "listing_id": p.listing_id,
                "round_days": p.round_days,
                "verdict": row.verdict,
                "rule": row.rule,
                "first_removed_recheck_id": first.id,
            },
            at=now,
        )
        written += 1
    return written
