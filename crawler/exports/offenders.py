"""Repeat offenders: sellers with confirmed items across batches, linked across platforms by contact handle.

A *confirmed* item is a listing that is in some takedown batch and whose latest review decision is still
``approve`` (an approval withdrawn later no longer counts against the seller). Platforms warn a seller up to
about three violations and then block the account, so at :data:`REPEAT_OFFENDER_THRESHOLD` confirmed items
a batch recommends account-level action for that seller in a separate section of the letter.

Sellers that share a contact handle (``Seller.contact_handles`` or the handles seen on their listings, e.g.
``wa:62812…``, ``ig:@handle``) are one *group*: the same trader behind accounts on several platforms. A
group's total is the sum over its accounts; the group is listed when the total reaches the threshold.
To change the rule, change :func:`offender_groups`; the letter and the JSON read its result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.review import latest_decisions_subquery
from storage.models import Listing, Seller, TakedownItem
from storage.portable import json_array_length

REPEAT_OFFENDER_THRESHOLD = 3


@dataclass(slots=True)
class OffenderAccount:
    seller_db_id: int
    platform: str
    seller_id: str
    name: str
    city: str
    shop_url: str
    confirmed: int
    handles: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "seller_id": self.seller_id,
            "seller_name": self.name,
            "seller_city": self.city,
            "shop_url": self.shop_url,
            "confirmed_items": self.confirmed,
            "contact_handles": self.handles,
        }


@dataclass(slots=True)
class OffenderGroup:
    accounts: list[OffenderAccount]
    shared_handles: list[str]
    total: int

    @property
    def platforms(self) -> list[str]:
        return sorted({a.platform for a in self.accounts})

    def to_dict(self) -> dict[str, Any]:
        return {
            "confirmed_items": self.total,
            "shared_contact_handles": self.shared_handles,
            "accounts": [a.to_dict() for a in self.accounts],
            "recommended_action": "account_level",
        }


def confirmed_counts(session: Session) -> dict[int, int]:
    """Seller (database id) → number of distinct confirmed listings over all batches."""
    decisions = latest_decisions_subquery()
    query = (
        select(Listing.seller_id, func.count(func.distinct(TakedownItem.listing_id)))
        .join(Listing, Listing.id == TakedownItem.listing_id)
        .join(decisions, decisions.c.listing_id == TakedownItem.listing_id)
        .where(decisions.c.decision == "approve", Listing.seller_id.is_not(None))
        .group_by(Listing.seller_id)
    )
    return {int(sid): int(count) for sid, count in session.execute(query) if sid is not None}


def _handles(session: Session, seller_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = list(seller_ids)
    out: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for seller_id, handles in session.execute(
            select(Seller.id, Seller.contact_handles).where(Seller.id.in_(chunk))
        ):
            out[seller_id].update(str(h) for h in handles or [])
        for seller_id, handles in session.execute(
            select(Listing.seller_id, Listing.contact_handles).where(
                Listing.seller_id.in_(chunk),
                func.coalesce(json_array_length(Listing.contact_handles), 0) > 0,
            )
        ):
            out[seller_id].update(str(h) for h in handles or [])
    return out


def offender_groups(
    session: Session, counts: dict[int, int] | None = None, threshold: int = REPEAT_OFFENDER_THRESHOLD
) -> list[OffenderGroup]:
    """Groups of linked sellers whose confirmed items reach ``threshold``, largest first."""
    counts = confirmed_counts(session) if counts is None else counts
    if not counts:
        return []
    handles = _handles(session, counts)
    # union-find over sellers that share a handle
    parent = {sid: sid for sid in counts}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, int] = {}
    for sid in sorted(counts):
        for handle in sorted(handles.get(sid, ())):
            if handle in owner:
                a, b = find(owner[handle]), find(sid)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[handle] = sid
    members: dict[int, list[int]] = defaultdict(list)
    for sid in counts:
        members[find(sid)].append(sid)
    candidates = [ids for ids in members.values() if sum(counts[s] for s in ids) >= threshold]
    if not candidates:
        return []
    wanted = [sid for ids in candidates for sid in ids]
    sellers: dict[int, Seller] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        sellers.update((s.id, s) for s in session.scalars(select(Seller).where(Seller.id.in_(chunk))))
    groups: list[OffenderGroup] = []
    for ids in candidates:
        accounts = [
            OffenderAccount(
                seller_db_id=sid,
                platform=sellers[sid].platform,
                seller_id=sellers[sid].platform_seller_id,
                name=sellers[sid].name or "",
                city=sellers[sid].city or "",
                shop_url=sellers[sid].shop_url or "",
                confirmed=counts[sid],
                handles=sorted(handles.get(sid, ())),
            )
            for sid in ids
        ]
        accounts.sort(key=lambda a: (-a.confirmed, a.platform, a.seller_id))
        handle_sets = [set(a.handles) for a in accounts]
        shared = (
            sorted(h for h in set().union(*handle_sets) if sum(h in s for s in handle_sets) > 1)
            if len(accounts) > 1
            else []
        )
        groups.append(OffenderGroup(accounts, shared, sum(a.confirmed for a in accounts)))
    groups.sort(key=lambda g: (-g.total, g.accounts[0].platform, g.accounts[0].seller_id))
    return groups
