"""Dealer networks: the accounts behind the listings, grouped, sized and ranked by wholesale volume.

Police and customs are asked to pursue the big dealers, wholesalers and distributors, not the retailers.
This module turns what tertib stored (sellers, listings, sightings with volume facts, review decisions,
relistings, image hashes) into networks of accounts with the evidence for every link. Steps, numbered the
same in :func:`compute_networks`:

1. **Load** the accounts (``sellers``), their listings and, streamed once, every sighting's volume facts;
   a listing's facts are folded as they pass (:class:`_ListingFacts`), so memory grows with listings, not
   sightings.
2. **Scope**: accounts with at least one *suspect* listing — a strong or candidate verdict, or an approved
   review decision. Accounts with nothing suspect never start a network (a linked one still joins).
3. **Links** between accounts, each with its kind and evidence:
   ``handle`` — the same contact handle (WhatsApp, Instagram …) on both, the strongest link (a handle
   seen on more than :data:`GENERIC_HANDLE_ACCOUNTS` accounts is a marketplace's or courier's, and
   ignored); ``relist`` — a flagged relisting (``crawler.audit.relist``) whose parent belongs to another
   account; ``name`` — near-identical shop names on different platforms (rapidfuzz ``ratio`` ≥
   :data:`NAME_THRESHOLD` after normalising); ``image`` — the same listing photo (perceptual hashes within
   :data:`IMAGE_MAX_DISTANCE` bits); ``city`` — the same pickup city, only ever a supporting link.
4. **Grouping** (union–find): ``handle`` and identity-backed ``relist`` links join accounts on their own.
   ``name``, ``image`` and a content-only ``relist`` join when two of them agree on the same two accounts,
   or a near-identical name (numbers in it equal) comes with the same city; never when the two accounts
   contradict each other (both show handles, none shared). A shared photo — alone or with a city — is a
   **supply** relation: resellers, often in the wholesaler's own city, repost its photos. It is kept as
   such (the account that showed it first supplies the later one), not as identity.
5. **Volume** per network: each listing's sold count now is an interval (counts only grow, so the largest
   floor seen is still a floor; the latest sighting's ceiling is the ceiling), summed with its precision;
   rupiah at the latest price; units sold inside the observation window from the first and last sightings.
6. **Wholesale signals** with evidence (:data:`SIGNAL_WEIGHTS`): bale or per-kilo units, high piece
   counts, "partai besar"/"grosir"/"reseller"/"paket usaha" wording, restocks between sightings, and
   supplying other accounts. Their weighted sum is the wholesale score.
7. **Ranking**: estimated units × (0.25 + 0.75 × wholesale score), best first, with an explanation.

Change a rule in the constants below; add a link kind in :func:`_links` and its join rule in
:func:`_joins`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.exports.offenders import confirmed_counts
from crawler.review import latest_decisions_subquery
from storage.models import Seller

logger = logging.getLogger(__name__)

SUSPECT_VERDICTS = ("strong", "candidate")
GENERIC_HANDLE_ACCOUNTS = 40
NAME_THRESHOLD = 92.0
IMAGE_MAX_DISTANCE = 4
WHOLESALE_WORDS = re.compile(
    r"\b(partai\s*besar|harga\s*partai|grosir(?:an)?|reseller|paket\s*usaha|modal\s*usaha|ambil\s*banyak"
    r"|supplier|distributor|agen|bal\s*segel|buka\s*bal)\b",
    re.IGNORECASE,
)
SIGNAL_WEIGHTS = {
    "bulk_units": 0.30,  # share of listings sold per bale, karung or kilo
    "piece_count": 0.10,  # the largest unit holds ≥ 200 pieces
    "wording": 0.15,  # share of listings with wholesale wording
    "restocks": 0.25,  # stock refilled between sightings
    "supplies": 0.20,  # other accounts repost its photos
}
ROLE_THRESHOLD = 0.5
# shop locations that are no place (a cross-border seller's "Luar Negeri"): never a shared city
NOT_A_CITY = frozenset({"luar negeri", "overseas", "abroad", "-"})
VOLUME_BASIS = (
    "sum over listings of the sold count shown now: exact counts as shown, rounded counts at the middle of "
    "their interval, floors ('100+') at the floor; rupiah at each listing's latest price"
)


# -- step 1: loading ------------------------------------------------------------------------------


@dataclass(slots=True)
class _ListingFacts:
    """One listing, with its sightings folded in (``add`` in ``seen_at`` order)."""

    id: int
    key: str
    account: int
    suspect: bool
    handles: tuple[str, ...]
    phash: str | None
    relist_of: int | None
    relist_evidence: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    text: str
    sightings: int = 0
    low: int | None = None  # largest floor seen (counts only grow)
    high: int | None = None  # the latest sighting's ceiling (None: open or unknown)
    high_known: bool = False
    precision: str | None = None
    first_low: int | None = None
    first_high: int | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None
    price: int | None = None
    stock: int | None = None
    restocks: int = 0
    unit_kind: str | None = None
    unit_pieces: int | None = None
    unit_kg: float | None = None

    def add(self, row: tuple[Any, ...]) -> None:
        """Fold one sighting (``_SIGHTINGS_SQL`` columns) in ``seen_at`` order."""
        _lid, seen_at, price, sold_low, sold_high, precision, stock, unit_kind, pieces, kg = row
        self.sightings += 1
        if price is not None:
            self.price = int(price)
        if stock is not None:
            if self.stock is not None and stock > self.stock:
                self.restocks += 1
            self.stock = int(stock)
        if unit_kind is not None:
            self.unit_kind, self.unit_pieces, self.unit_kg = unit_kind, pieces, kg
        if sold_low is None:
            return
        low = int(sold_low)
        if self.first_low is None:
            self.first_low, self.first_high, self.first_at = low, sold_high, seen_at
        if self.low is None or low > self.low:
            self.low = low
        self.high = None if sold_high is None else int(sold_high)
        self.high_known = True
        self.precision = precision
        self.last_at = seen_at

    # step 5 for one listing
    @property
    def upper(self) -> int | None:
        if self.low is None or self.high is None:
            return None
        return max(self.low, self.high)

    @property
    def estimate(self) -> float:
        if self.low is None:
            return 0.0
        upper = self.upper
        return float(self.low) if upper is None else (self.low + upper) / 2

    @property
    def window_units(self) -> float:
        """Units sold between the first and the last sighting with a sold count (midpoints)."""
        if self.low is None or self.first_low is None or self.first_at == self.last_at:
            return 0.0
        first = self.first_low if self.first_high is None else (self.first_low + self.first_high) / 2
        return max(0.0, self.estimate - first)

    @property
    def bulk(self) -> bool:
        return self.unit_kind in ("bale", "kg") or (self.unit_pieces or 0) >= 50


@dataclass(slots=True)
class Account:
    id: int
    platform: str
    seller_id: str
    name: str
    city: str
    shop_url: str
    handles: set[str]
    first_seen: datetime
    last_seen: datetime
    confirmed: int = 0
    listings: list[_ListingFacts] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.seller_id}"

    @property
    def suspect(self) -> bool:
        return self.confirmed > 0 or any(x.suspect for x in self.listings)


@dataclass(frozen=True, slots=True)
class Link:
    """Why two accounts are (or may be) one network."""

    a: str  # platform:seller_id
    b: str
    kind: str  # handle / relist / name / image / city / supply
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "kind": self.kind, "evidence": self.evidence}


@dataclass(slots=True)
class Network:
    id: str
    accounts: list[Account]
    links: list[Link]
    supplies: list[Link]
    supplied_by: list[Link]
    volume: dict[str, Any]
    wholesale: dict[str, Any]
    rank_score: float = 0.0
    rank: int = 0
    explanation: str = ""

    @property
    def role(self) -> str:
        return "wholesale" if self.wholesale["score"] >= ROLE_THRESHOLD else "retail"

    @property
    def listings(self) -> list[_ListingFacts]:
        return [x for a in self.accounts for x in a.listings]

    def summary(self) -> dict[str, Any]:
        listings = self.listings
        firsts = [a.first_seen for a in self.accounts]
        lasts = [a.last_seen for a in self.accounts]
        return {
            "size": len(self.accounts),
            "platforms": sorted({a.platform for a in self.accounts}),
            "cities": sorted({a.city for a in self.accounts if a.city}),
            "first_seen": min(firsts).isoformat() if firsts else None,
            "last_seen": max(lasts).isoformat() if lasts else None,
            "listings": len(listings),
            "suspect_listings": sum(1 for x in listings if x.suspect),
            "confirmed_violations": sum(a.confirmed for a in self.accounts),
            "handles": sorted({h for a in self.accounts for h in a.handles}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rank": self.rank,
            "role": self.role,
            "accounts": [a.key for a in self.accounts],
            "volume_units": round(self.volume["units"], 1),
            **self.summary(),
            "volume": self.volume,
            "wholesale": self.wholesale,
            "rank_score": round(self.rank_score, 2),
            "explanation": self.explanation,
            "account_details": [
                {
                    "account": a.key,
                    "name": a.name,
                    "city": a.city,
                    "shop_url": a.shop_url,
                    "handles": sorted(a.handles),
                    "confirmed_violations": a.confirmed,
                    "listings": len(a.listings),
                    "first_seen": a.first_seen.isoformat(),
                    "last_seen": a.last_seen.isoformat(),
                }
                for a in self.accounts
            ],
            "links": [link.to_dict() for link in self.links],
            "supplies": [link.to_dict() for link in self.supplies],
            "supplied_by": [link.to_dict() for link in self.supplied_by],
        }


def _approved_listing_ids(session: Session) -> set[int]:
    decisions = latest_decisions_subquery()
    return {
        int(lid)
        for (lid,) in session.execute(select(decisions.c.listing_id).where(decisions.c.decision == "approve"))
    }


def _dt(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (raw SQLite rows hold text, PostgreSQL's datetimes)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(value: Any, empty: Any) -> Any:
    """A JSON column read raw: text on SQLite (parsed only when not empty), parsed on PostgreSQL."""
    if isinstance(value, str):
        return json.loads(value) if value not in ("", "[]", "{}", "null") else empty
    return value if value is not None else empty


def _raw_rows(session: Session, sql: str, name: str) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` straight from the driver, 50,000 at a time: no ORM or type processing, which cost
    more than the work itself at a million sightings (a server-side cursor on PostgreSQL)."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    postgres = connection.dialect.name == "postgresql"
    cursor = raw.cursor(name=name) if postgres else raw.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(50_000):
            yield from rows
    finally:
        cursor.close()


_SIGHTINGS_SQL = (
    "SELECT listing_id, seen_at, price, sold_low, sold_high, sold_precision, stock, unit_kind, unit_pieces, "
    "unit_kg FROM sightings ORDER BY listing_id, seen_at, id"
)
_LISTINGS_SQL = (
    "SELECT id, listing_key, seller_id, verdict, contact_handles, image_phash, relist_of_id, "
    "relist_evidence, first_seen, last_seen, title, description FROM listings WHERE seller_id IS NOT NULL"
)


def _load(session: Session, progress: Callable[[int], None] | None) -> dict[int, Account]:
    """Step 1: accounts, listings and the folded sightings."""
    confirmed = confirmed_counts(session)
    approved = _approved_listing_ids(session)
    accounts: dict[int, Account] = {}
    for row in session.execute(
        select(
            Seller.id,
            Seller.platform,
            Seller.platform_seller_id,
            Seller.name,
            Seller.city,
            Seller.shop_url,
            Seller.contact_handles,
            Seller.first_seen,
            Seller.last_seen,
        )
    ):
        accounts[row.id] = Account(
            id=row.id,
            platform=row.platform,
            seller_id=row.platform_seller_id,
            name=row.name or "",
            city=row.city or "",
            shop_url=row.shop_url or "",
            handles={str(h) for h in row.contact_handles or ()},
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            confirmed=confirmed.get(row.id, 0),
        )
    facts: dict[int, _ListingFacts] = {}
    for (
        lid,
        key,
        seller_id,
        verdict,
        handles_raw,
        phash,
        relist_of,
        evidence,
        first,
        last,
        title,
        desc,
    ) in _raw_rows(session, _LISTINGS_SQL, "tertib_intel_listings"):
        account = accounts.get(seller_id)
        if account is None:
            continue
        handles = tuple(str(h) for h in _json(handles_raw, ()))
        account.handles.update(handles)
        item = _ListingFacts(
            id=lid,
            key=key,
            account=seller_id,
            suspect=verdict in SUSPECT_VERDICTS or lid in approved,
            handles=handles,
            phash=phash,
            relist_of=relist_of,
            relist_evidence=dict(_json(evidence, {})) if relist_of is not None else {},
            first_seen=_dt(first),
            last_seen=_dt(last),
            text=f"{title or ''}\n{(desc or '')[:2000]}",
        )
        facts[lid] = item
        account.listings.append(item)
    count = 0
    current: _ListingFacts | None = None
    current_id = None
    for sighting in _raw_rows(session, _SIGHTINGS_SQL, "tertib_intel_sightings"):
        count += 1
        if sighting[0] != current_id:
            current_id, current = sighting[0], facts.get(sighting[0])
            if progress is not None and count % 100_000 < 50:
                progress(count)
        if current is not None:
            current.add(sighting)
    if progress is not None:
        progress(count)
    return accounts


# -- step 3: links --------------------------------------------------------------------------------

_GENERIC_NAME_WORDS = {"official", "store", "shop", "olshop", "online", "id", "indonesia", "toko", "the"}


def normalise_name(name: str) -> str:
    """A shop name for comparison: folded to ASCII, lower case, without punctuation or generic words."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and w not in _GENERIC_NAME_WORDS]
    return " ".join(words)


def _bands(phash: str) -> list[tuple[int, str]]:
    """Locality-sensitive bands of a 64-bit hash: two hashes within 4 bits agree on at least one of the
    five bands (pigeonhole), so only hashes sharing a band are compared."""
    bits = f"{int(phash, 16):064b}"
    size = 13
    return [(i, bits[i * size : (i + 1) * size]) for i in range(5)]


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _links(accounts: dict[int, Account], listing_account: dict[int, int]) -> list[tuple[int, int, Link]]:
    """Step 3: every link between two accounts, once per (pair, kind, evidence)."""
    from rapidfuzz import fuzz

    out: list[tuple[int, int, Link]] = []

    def add(a: int, b: int, kind: str, evidence: dict[str, Any]) -> None:
        if a == b:
            return
        x, y = (a, b) if accounts[a].key <= accounts[b].key else (b, a)
        out.append((x, y, Link(accounts[x].key, accounts[y].key, kind, evidence)))

    # handles
    by_handle: dict[str, list[int]] = defaultdict(list)
    for acc in accounts.values():
        for h in acc.handles:
            by_handle[h].append(acc.id)
    for handle, ids in sorted(by_handle.items()):
        if len(ids) < 2:
            continue
        if len(ids) > GENERIC_HANDLE_ACCOUNTS:
            logger.info("handle %s is on %d accounts: treated as generic, not as a link", handle, len(ids))
            continue
        ids = sorted(ids)
        for other in ids[1:]:  # a star is enough for grouping; the evidence names the handle
            add(ids[0], other, "handle", {"handle": handle})
    # relistings across accounts
    for acc in accounts.values():
        for item in acc.listings:
            if item.relist_of is None:
                continue
            parent_account = listing_account.get(item.relist_of)
            if parent_account is None or parent_account == acc.id:
                continue
            ev = item.relist_evidence
            identity = bool(ev.get("shared_handles") or ev.get("same_seller"))
            add(
                acc.id,
                parent_account,
                "relist",
                {
                    "listing": item.key,
                    "parent": ev.get("parent_key"),
                    "rule": ev.get("rule"),
                    "identity": identity,
                },
            )
    # names across platforms: blocked by the first four characters of the normalised name
    blocks: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for acc in accounts.values():
        norm = normalise_name(acc.name)
        if len(norm) >= 4:
            blocks[norm[:4]].append((acc.id, norm))
    for members in blocks.values():
        if len(members) < 2:
            continue
        if len(members) > 400:  # a very common prefix: only exact names compare
            exact: dict[str, list[int]] = defaultdict(list)
            for aid, norm in members:
                exact[norm].append(aid)
            pairs = [(ids[0], o, 100.0) for ids in exact.values() for o in ids[1:]]
        else:
            pairs = []
            for i, (aid, norm) in enumerate(members):
                for bid, other_norm in members[i + 1 :]:
                    score = fuzz.ratio(norm, other_norm)
                    if score >= NAME_THRESHOLD:
                        pairs.append((aid, bid, score))
        for aid, bid, score in pairs:
            a_norm, b_norm = normalise_name(accounts[aid].name), normalise_name(accounts[bid].name)
            if re.findall(r"\d+", a_norm) != re.findall(r"\d+", b_norm):
                continue  # "Bal Rina 12" and "Bal Rina 13" are two shops: numbers must agree
            if accounts[aid].platform != accounts[bid].platform:
                add(
                    aid,
                    bid,
                    "name",
                    {"names": [accounts[aid].name, accounts[bid].name], "score": round(score, 1)},
                )
    # images: the same photo on listings of two accounts
    holders: dict[str, list[_ListingFacts]] = defaultdict(list)
    for acc in accounts.values():
        for item in acc.listings:
            if item.phash:
                holders[item.phash].append(item)
    band_index: dict[tuple[int, str], list[str]] = defaultdict(list)
    for phash in holders:
        for band in _bands(phash):
            band_index[band].append(phash)
    near: dict[str, set[str]] = defaultdict(set)
    for hashes in band_index.values():
        if len(hashes) < 2 or len(hashes) > 2000:
            continue
        for i, h in enumerate(hashes):
            for g in hashes[i + 1 :]:
                if _hamming(h, g) <= IMAGE_MAX_DISTANCE:
                    near[h].add(g)
    seen_pairs: set[tuple[int, int]] = set()
    for phash, items in holders.items():
        group = list(items)
        for close in near.get(phash, ()):
            group.extend(holders[close])
        group.sort(key=lambda x: (x.first_seen, x.id))
        for i, first in enumerate(group):
            for later in group[i + 1 :]:
                if first.account == later.account:
                    continue
                pair = (min(first.account, later.account), max(first.account, later.account))
                if pair in seen_pairs:
                    continue
                seen_pairs.add(pair)
                add(
                    first.account,
                    later.account,
                    "image",
                    {
                        "listings": [first.key, later.key],
                        "first": first.key,
                        "distance": _hamming(first.phash or "0", later.phash or "0"),
                    },
                )
    return out


# -- step 4: grouping -----------------------------------------------------------------------------


class _Union:
    def __init__(self, ids: Iterable[int]) -> None:
        self.parent = {i: i for i in ids}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _contradict(a: Account, b: Account) -> bool:
    return bool(a.handles) and bool(b.handles) and not (a.handles & b.handles)


def _joins(
    accounts: dict[int, Account], links: list[tuple[int, int, Link]]
) -> tuple[_Union, list[tuple[int, int, Link]]]:
    """Step 4: which links join accounts; returns the union and the links that did not (supply, weak)."""
    union = _Union(accounts)
    by_pair: dict[tuple[int, int], list[Link]] = defaultdict(list)
    for a, b, link in links:
        by_pair[(a, b)].append(link)
    for a, b, link in links:
        if link.kind == "handle" or (link.kind == "relist" and link.evidence.get("identity")):
            union.union(a, b)
    rest: list[tuple[int, int, Link]] = []
    for (a, b), pair_links in by_pair.items():
        kinds = {link.kind for link in pair_links}
        if "handle" in kinds or any(lk.kind == "relist" and lk.evidence.get("identity") for lk in pair_links):
            continue
        support = set(kinds)
        city = accounts[a].city.strip().lower()
        same_city = bool(city) and city not in NOT_A_CITY and city == accounts[b].city.strip().lower()
        if same_city:
            support.add("city")
        medium = support & {"name", "image", "relist"}
        # two content links agree, or a near-identical name in the same city; a photo and a city are not
        # enough (a local reseller reposts the local wholesaler's photos)
        joined = len(medium) >= 2 or ("name" in medium and same_city)
        if joined and not _contradict(accounts[a], accounts[b]):
            union.union(a, b)
            if "city" in support:
                rest.append(
                    (a, b, Link(accounts[a].key, accounts[b].key, "city", {"city": accounts[a].city}))
                )
            continue
        rest.extend((a, b, link) for link in pair_links)
    return union, rest


# -- steps 5-7: volume, signals, ranking ----------------------------------------------------------


def _volume(listings: list[_ListingFacts]) -> dict[str, Any]:
    counted = [x for x in listings if x.low is not None]
    units = sum(x.estimate for x in counted)
    low = sum(x.low or 0 for x in counted)
    open_ended = [x for x in counted if x.upper is None]
    high = None if open_ended else sum(x.upper or 0 for x in counted)
    rupiah = sum(x.estimate * (x.price or 0) for x in counted)
    rupiah_low = sum((x.low or 0) * (x.price or 0) for x in counted)
    pieces = sum(x.estimate * (x.unit_pieces or 1) for x in counted)
    starts = [_dt(x.first_at) for x in counted if x.first_at is not None]
    ends = [_dt(x.last_at) for x in counted if x.last_at is not None]
    return {
        "units": round(units, 1),
        "units_low": low,
        "units_high": high,  # None: some counts are floors ("100+"): no upper bound
        "open_ended_listings": len(open_ended),
        "precision": dict(Counter(x.precision or "unknown" for x in counted)),
        "listings_with_sold": len(counted),
        "listings_without_sold": len(listings) - len(counted),
        "pieces": round(pieces, 1),
        "rupiah": round(rupiah),
        "rupiah_low": round(rupiah_low),
        "window_units": round(sum(x.window_units for x in counted), 1),
        "window": [min(starts).isoformat(), max(ends).isoformat()] if starts and ends else None,
        "basis": VOLUME_BASIS,
    }


def _signals(listings: list[_ListingFacts], supplies: list[Link]) -> dict[str, Any]:
    n = max(1, len(listings))
    bulk = [x for x in listings if x.bulk]
    worded = [(x, m.group(0)) for x in listings if (m := WHOLESALE_WORDS.search(x.text))]
    pieces = max((x.unit_pieces or 0 for x in listings), default=0)
    restocks = sum(x.restocks for x in listings)
    restocked = [x for x in listings if x.restocks]
    supplied = sorted({link.b for link in supplies})
    values = {
        "bulk_units": len(bulk) / n,
        "piece_count": 1.0 if pieces >= 200 else pieces / 200,
        "wording": len(worded) / n,
        "restocks": min(1.0, len(restocked) / n * 2),
        "supplies": min(1.0, len(supplied) / 2),
    }
    score = sum(SIGNAL_WEIGHTS[k] * v for k, v in values.items())
    return {
        "score": round(score, 3),
        "signals": [
            {
                "kind": "bulk_units",
                "value": round(values["bulk_units"], 3),
                "weight": SIGNAL_WEIGHTS["bulk_units"],
                "evidence": f"{len(bulk)} of {len(listings)} listings sold per bale, karung or kilo",
                "count": len(bulk),
                "of": len(listings),
                "listings": [x.key for x in bulk[:5]],
            },
            {
                "kind": "piece_count",
                "value": round(values["piece_count"], 3),
                "weight": SIGNAL_WEIGHTS["piece_count"],
                "evidence": f"largest unit holds {pieces} pieces" if pieces else "no piece count in the text",
                "pieces": pieces,
            },
            {
                "kind": "wording",
                "value": round(values["wording"], 3),
                "weight": SIGNAL_WEIGHTS["wording"],
                "evidence": f"{len(worded)} listings with wholesale wording"
                + (f" (e.g. {worded[0][1]!r})" if worded else ""),
                "count": len(worded),
                "example": worded[0][1] if worded else None,
                "listings": [x.key for x, _w in worded[:5]],
            },
            {
                "kind": "restocks",
                "value": round(values["restocks"], 3),
                "weight": SIGNAL_WEIGHTS["restocks"],
                "evidence": f"{restocks} restocks on {len(restocked)} listings between sightings",
                "restocks": restocks,
                "count": len(restocked),
                "listings": [x.key for x in restocked[:5]],
            },
            {
                "kind": "supplies",
                "value": round(values["supplies"], 3),
                "weight": SIGNAL_WEIGHTS["supplies"],
                "evidence": f"its photos reposted later by {len(supplied)} other accounts",
                "count": len(supplied),
                "accounts": supplied[:10],
            },
        ],
    }


def _explain(net: Network) -> str:
    v, w = net.volume, net.wholesale
    top = sorted(w["signals"], key=lambda s: -s["value"] * s["weight"])[:3]
    parts = [f"{s['kind']} {s['value']:.2f}" for s in top if s["value"] > 0]
    bound = "≥" if v["units_high"] is None else "≤" + f"{v['units_high']:,}"
    return (
        f"estimated {v['units']:,.0f} units sold (at least {v['units_low']:,}, {bound}) on "
        f"{v['listings_with_sold']} listings with a sold count; wholesale score {w['score']:.2f}"
        + (f" ({', '.join(parts)})" if parts else "")
        + f"; rank score = units × (0.25 + 0.75 × {w['score']:.2f}) = {net.rank_score:,.0f}"
    )


def _network_id(accounts: list[Account]) -> str:
    anchor = min(accounts, key=lambda a: (a.first_seen, a.key)).key
    return "NET-" + hashlib.sha256(anchor.encode()).hexdigest()[:8].upper()


def compute_networks(
    session: Session, *, include_unsuspected: bool = False, progress: Callable[[int], None] | None = None
) -> list[Network]:
    """Steps 1–7: every network with at least one suspect account (all with ``include_unsuspected``),
    best first."""
    # 1. Load.
    accounts = _load(session, progress)
    if not accounts:
        return []
    listing_account = {x.id: a.id for a in accounts.values() for x in a.listings}
    # 2. Scope: decided below per network (a suspect account starts one; linked accounts join it).
    # 3. Links.
    links = _links(accounts, listing_account)
    # 4. Grouping.
    union, loose = _joins(accounts, links)
    members: dict[int, list[int]] = defaultdict(list)
    for aid in accounts:
        members[union.find(aid)].append(aid)
    link_by_root: dict[int, list[Link]] = defaultdict(list)
    for a, b, link in links:
        ra, rb = union.find(a), union.find(b)
        if ra == rb:
            link_by_root[ra].append(link)
    for a, b, link in loose:
        ra, rb = union.find(a), union.find(b)
        if ra == rb and link.kind == "city":
            link_by_root[ra].append(link)
    # a shared photo between networks: the account that showed it first supplies the other
    supplies: dict[int, list[Link]] = defaultdict(list)
    supplied_by: dict[int, list[Link]] = defaultdict(list)
    seen_supply: set[tuple[int, int]] = set()
    for a, b, link in loose:
        ra, rb = union.find(a), union.find(b)
        if ra == rb or link.kind != "image":
            continue
        first_key = str(link.evidence["first"])
        src, dst = (a, b) if first_key in {x.key for x in accounts[a].listings} else (b, a)
        supply = Link(accounts[src].key, accounts[dst].key, "supply", link.evidence)
        rs, rd = union.find(src), union.find(dst)
        if (rs, dst) in seen_supply:  # one link per supplied account, whichever of its accounts showed it
            continue
        seen_supply.add((rs, dst))
        supplies[rs].append(supply)
        supplied_by[rd].append(supply)
    networks: list[Network] = []
    for root, ids in members.items():
        accs = sorted((accounts[i] for i in ids), key=lambda a: (-a.confirmed, -len(a.listings), a.key))
        if not include_unsuspected and not any(a.suspect for a in accs):
            continue
        listings = [x for a in accs for x in a.listings if x.suspect or include_unsuspected]
        # 5. Volume (suspect listings only: the trade, not the shop's other goods).
        volume = _volume(listings)
        # 6. Wholesale signals.
        wholesale = _signals(listings, supplies.get(root, []))
        net = Network(
            id=_network_id(accs),
            accounts=accs,
            links=sorted(link_by_root.get(root, []), key=lambda lk: (lk.kind, lk.a, lk.b)),
            supplies=supplies.get(root, []),
            supplied_by=supplied_by.get(root, []),
            volume=volume,
            wholesale=wholesale,
        )
        # 7. Ranking.
        net.rank_score = volume["units"] * (0.25 + 0.75 * wholesale["score"])
        networks.append(net)
    networks.sort(key=lambda n: (-n.rank_score, -n.volume["units"], n.id))
    for i, net in enumerate(networks, start=1):
        net.rank = i
        net.explanation = _explain(net)
    return networks


def find_network(networks: list[Network], ref: str) -> Network | None:
    """A network by id (``NET-…``), rank number, or any of its accounts (``platform:seller_id``)."""
    ref = ref.strip()
    if ref.isdigit():
        rank = int(ref)
        return next((n for n in networks if n.rank == rank), None)
    for net in networks:
        if net.id.lower() == ref.lower() or any(a.key == ref for a in net.accounts):
            return net
    return None


__all__ = ["Account", "Link", "Network", "compute_networks", "find_network", "normalise_name"]
