"""Audit figures for overview pages: removals over time, batches still waiting for rechecks, ledger rows.

The console's dashboard and its JSON API read these; each function works in the caller's session and
aggregates in SQL, so the answers stay small however many items were rechecked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from storage.models import BatchSend, Recheck, TakedownBatch, TakedownItem


def removal_series(session: Session) -> dict[str, list[tuple[datetime, int]]]:
    """Per platform, cumulative takedown items first seen REMOVED or HIDDEN, one point per (UTC) day.

    Aggregated in SQL (first removal per item, then items per platform and day), so the chart stays a few
    hundred points however many items were rechecked.
    """
    first = (
        select(TakedownItem.platform.label("platform"), func.min(Recheck.checked_at).label("at"))
        .join(Recheck, Recheck.takedown_item_id == TakedownItem.id)
        .where(Recheck.verdict.in_(("REMOVED", "HIDDEN")))
        .group_by(TakedownItem.id, TakedownItem.platform)
        .subquery()
    )
    day = func.substr(func.cast(first.c.at, String), 1, 10)
    rows = session.execute(
        select(first.c.platform, day, func.count()).group_by(first.c.platform, day).order_by(day)
    ).all()
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for platform, text, count in rows:
        points = series[platform]
        at = datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
        points.append((at, (points[-1][1] if points else 0) + int(count)))
    return dict(series)


@dataclass(frozen=True, slots=True)
class AwaitingBatch:
    number: str
    first_sent: datetime
    done: int  # items rechecked in the last round
    total: int


def batches_awaiting_rechecks(session: Session, last_round: int, limit: int = 50) -> list[AwaitingBatch]:
    """Batches sent to at least one platform whose items still lack a recheck of ``last_round`` days."""
    totals = (
        select(TakedownItem.batch_id.label("batch_id"), func.count().label("total"))
        .group_by(TakedownItem.batch_id)
        .subquery()
    )
    done = (
        select(
            TakedownItem.batch_id.label("batch_id"),
            func.count(func.distinct(Recheck.takedown_item_id)).label("done"),
        )
        .join(Recheck, Recheck.takedown_item_id == TakedownItem.id)
        .where(Recheck.round_days == last_round)
        .group_by(TakedownItem.batch_id)
        .subquery()
    )
    sent = (
        select(BatchSend.batch_id.label("batch_id"), func.min(BatchSend.sent_at).label("first_sent"))
        .group_by(BatchSend.batch_id)
        .subquery()
    )
    done_n = func.coalesce(done.c.done, 0)
    rows = session.execute(
        select(TakedownBatch.number, sent.c.first_sent, done_n, totals.c.total)
        .join(sent, sent.c.batch_id == TakedownBatch.id)
        .join(totals, totals.c.batch_id == TakedownBatch.id)
        .outerjoin(done, done.c.batch_id == TakedownBatch.id)
        .where(done_n < totals.c.total)
        .order_by(TakedownBatch.id.desc())
        .limit(limit)
    ).all()
    return [AwaitingBatch(number, first, int(d), int(t)) for number, first, d, t in rows]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    batch: str
    platform: str
    listing_id: int
    url: str
    round_days: int | None
    checked_at: datetime
    verdict: str
    rule: str


def ledger_rows(session: Session, batch: str | None = None, limit: int = 200) -> list[LedgerRow]:
    """Recheck ledger rows of takedown items, newest first; one batch's with ``batch`` (its number)."""
    query = (
        select(Recheck, TakedownBatch.number, TakedownItem.platform, TakedownItem.url)
        .join(TakedownItem, TakedownItem.id == Recheck.takedown_item_id)
        .join(TakedownBatch, TakedownBatch.id == TakedownItem.batch_id)
        .order_by(Recheck.checked_at.desc(), Recheck.id.desc())
        .limit(limit)
    )
    if batch:
        query = query.where(TakedownBatch.number == batch)
    return [
        LedgerRow(
            id=r.id,
            batch=number,
            platform=platform,
            listing_id=r.listing_id,
            url=url,
            round_days=r.round_days,
            checked_at=r.checked_at,
            verdict=r.verdict,
            rule=r.rule,
        )
        for r, number, platform, url in session.execute(query).all()
    ]
