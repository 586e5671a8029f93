"""Relisting detection: new listings that are a requested or removed listing come back.

Called after every sweep (``detect_relistings(session, sweep_run_id=run_id)``, the lead wires it) and after
every recheck (``tertib recheck`` does it with ``since`` = the earliest send time rechecked), and by hand with
``tertib audit relist [--run ID]``. Steps, numbered the same in :func:`detect_relistings`:

1. **Parents**: listings already requested (a :class:`storage.models.TakedownItem` whose batch was sent to
   its platform; request time = the earliest ``BatchSend.sent_at``) or seen REMOVED
   (``Listing.last_status``; request time = their ``first_seen``).
2. **New listings**: those sighted in the given sweep run and first seen during it (``first_seen >=
   run.started_at``), or first seen at/after ``since``, or every listing. Already linked ones are skipped.
3. **Pairs**: a new listing and a parent form a pair when the new listing was first seen after the parent
   and not before the parent's request time (a relisting comes back *after* the takedown request).
4. **Signals** per pair: ``seller`` (same platform seller id), ``handle`` (a shared contact handle, from the
   listing or its seller), ``title`` (rapidfuzz ``token_set_ratio`` on :func:`crawler.terms.normalise`d
   titles ≥ :data:`TITLE_THRESHOLD`), ``image`` (Hamming distance of ``imagehash.phash`` of the main images
   ≤ :data:`IMAGE_MAX_DISTANCE`). Images are fetched over HTTP (:data:`IMAGE_TIMEOUT` seconds) only for
   listings that take part in a pair, each once: the hash is cached in ``Listing.image_phash``.
5. **Decision** (:func:`decide`): identity signals alone (seller, handle) are *not* enough, because one
   trader runs many listings under one shop and one WhatsApp number — a sibling listing is not a relisting
   (on the sandbox's truth, handle-only matching flags thousands of sibling pairs). A pair is a relisting when
   the content matches too: image + (seller or handle or title); or title + (seller or handle) unless both
   pictures are known and clearly different (> :data:`IMAGE_CONFLICT_DISTANCE` bits: the same template
   title on another product); or the very same picture (≤ :data:`IMAGE_STRICT_DISTANCE` bits) with no other
   link. Measured on the sandbox: unrelated pictures come within 4 bits in about 5 of 100,000 pairs and
   within 10 bits in about 5 of 10,000, which is why a picture alone needs an exact match. The best parent
   wins (most signals, then the smallest image distance, then the highest title score).
6. **Flag**: set ``relist_of_id`` and ``relist_evidence`` (parent key, signals, scores, distances, shared
   handles, rule), append a ``relist`` custody entry, and make sure the listing is in the review queue: a
   weak or clear score is raised to ``candidate`` (the queue lists ``candidate`` and ``strong``) and
   ``relist_evidence["queue"]`` says so and keeps the scorer's verdict. A later sweep re-scoring the listing
   would lower it again, so step 2 also re-raises flagged listings sighted in the run.

Knobs: the module constants below (keyword arguments of :func:`detect_relistings` override them).
Extend: a new signal is one more entry in :func:`pair_signals` and a rule in :func:`decide`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.errors import NotFound
from crawler.terms.normalise import normalise_phrase
from storage import custody
from storage.models import BatchSend, Listing, Seller, Sighting, SweepRun, TakedownItem

logger = logging.getLogger(__name__)

TITLE_THRESHOLD = 90.0
IMAGE_MAX_DISTANCE = 10
IMAGE_STRICT_DISTANCE = 0
IMAGE_CONFLICT_DISTANCE = 20
IMAGE_TIMEOUT = 5.0
IMAGE_WORKERS = 4
QUEUE_VERDICTS = ("candidate", "strong")
RAISED_VERDICT = "candidate"

ImageFetcher = Callable[[str], bytes | None]


@dataclass(slots=True)
class RelistMatch:
    listing_id: int
    listing_key: str
    parent_id: int
    parent_key: str
    signals: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Row:
    id: int
    key: str
    platform: str
    seller_id: int | None
    handles: frozenset[str]
    title: str
    norm_title: str
    image_url: str | None
    phash: str | None
    first_seen: datetime
    since: datetime | None = None  # parents: the request time


def http_image(url: str, client: Any = None) -> bytes | None:
    """The image at ``url`` (short timeout; reuses ``client``, an ``httpx.Client``); None on failure."""
    import httpx

    try:
        if client is not None:
            response = client.get(url)
        else:
            response = httpx.get(url, timeout=IMAGE_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as exc:
        logger.info("image fetch failed for %s: %s", url, exc)
        return None
    if response.status_code != 200 or not response.content:
        logger.info("image fetch for %s answered HTTP %s", url, response.status_code)
        return None
    return bytes(response.content)


def phash_hex(data: bytes) -> str | None:
    """Perceptual hash of an image as hex (``imagehash.phash``), or None for bytes that are not an image."""
    import io

    import imagehash
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return str(imagehash.phash(img.convert("RGB")))
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _norm(title: str) -> str:
    return normalise_phrase(title or "")


def _rows(session: Session, listings: Iterable[Listing]) -> dict[int, _Row]:
    listings = list(listings)
    seller_ids = {x.seller_id for x in listings if x.seller_id is not None}
    seller_handles: dict[int, list[str]] = {}
    ids = sorted(seller_ids)
    for start in range(0, len(ids), 500):
        for seller in session.scalars(select(Seller).where(Seller.id.in_(ids[start : start + 500]))):
            seller_handles[seller.id] = list(seller.contact_handles or [])
    out = {}
    for x in listings:
        handles = set(x.contact_handles or []) | set(seller_handles.get(x.seller_id or -1, []))
        out[x.id] = _Row(
            id=x.id,
            key=x.listing_key,
            platform=x.platform,
            seller_id=x.seller_id,
            handles=frozenset(handles),
            title=x.title,
            norm_title=_norm(x.title),
            image_url=x.image_url,
            phash=x.image_phash,
            first_seen=x.first_seen,
        )
    return out


def parents(session: Session) -> dict[int, _Row]:
    """Requested (sent) and removed listings, each with its request time."""
    since: dict[int, datetime] = {}
    sends = {(s.batch_id, s.platform): s.sent_at for s in session.scalars(select(BatchSend))}
    for item in session.scalars(select(TakedownItem)):
        sent = sends.get((item.batch_id, item.platform))
        if sent is not None:
            since[item.listing_id] = min(sent, since.get(item.listing_id, sent))
    removed = session.scalars(select(Listing).where(Listing.last_status == "REMOVED")).all()
    requested = _chunked_listings(session, sorted(since))
    rows = _rows(session, [*requested, *[x for x in removed if x.id not in since]])
    for row in rows.values():
        row.since = since.get(row.id, row.first_seen)
    return rows


def _chunked_listings(session: Session, ids: Sequence[int]) -> list[Listing]:
    out: list[Listing] = []
    for start in range(0, len(ids), 500):
        out.extend(session.scalars(select(Listing).where(Listing.id.in_(ids[start : start + 500]))))
    return out


def new_listings(
    session: Session, *, sweep_run_id: int | None = None, since: datetime | None = None
) -> list[Listing]:
    """Step 2: listings first seen in the run (or since a time, or all), in id order."""
    query = select(Listing).order_by(Listing.id)
    if sweep_run_id is not None:
        run = session.get(SweepRun, sweep_run_id)
        if run is None:
            raise NotFound(f"no such sweep run: {sweep_run_id}")
        sighted = select(Sighting.listing_id).where(Sighting.sweep_run_id == sweep_run_id)
        query = query.where(Listing.id.in_(sighted), Listing.first_seen >= run.started_at)
    if since is not None:
        query = query.where(Listing.first_seen >= since)
    return list(session.scalars(query))


def pair_signals(
    child: _Row, parent: _Row, title_score: float, *, title_threshold: float, image_max: int
) -> dict[str, Any]:
    """Step 4 for one pair: which signals fired, with their scores."""
    shared = sorted(child.handles & parent.handles)
    out: dict[str, Any] = {
        "seller": child.seller_id is not None and child.seller_id == parent.seller_id,
        "handle": bool(shared),
        "shared_handles": shared,
        "title_score": round(float(title_score), 1),
        "title": float(title_score) >= title_threshold,
        "image_distance": None,
        "image": False,
    }
    if child.phash and parent.phash:
        distance = hamming(child.phash, parent.phash)
        out["image_distance"] = distance
        out["image"] = distance <= image_max
    return out


def decide(
    signals: dict[str, Any], *, image_strict: int, image_conflict: int = IMAGE_CONFLICT_DISTANCE
) -> str | None:
    """Step 5: the rule that makes a pair a relisting, or None."""
    identity = signals["seller"] or signals["handle"]
    distance = signals["image_distance"]
    if signals["image"] and (identity or signals["title"]):
        return "image+identity" if identity else "image+title"
    if signals["title"] and identity and (distance is None or distance <= image_conflict):
        return "title+identity"
    if distance is not None and distance <= image_strict:
        return "image_strict"
    return None


def _rank(signals: dict[str, Any]) -> tuple[int, int, float]:
    count = sum(1 for k in ("seller", "handle", "title", "image") if signals[k])
    distance = signals["image_distance"]
    return (-count, 64 if distance is None else distance, -signals["title_score"])


def _hash_images(session: Session, rows: Iterable[_Row], fetch: ImageFetcher, workers: int) -> dict[str, int]:
    todo = [r for r in rows if r.phash is None and r.image_url]
    stats = {"fetched": 0, "failed": 0, "cached": 0}
    by_url: dict[str, list[_Row]] = {}
    for r in todo:
        assert r.image_url is not None
        by_url.setdefault(r.image_url, []).append(r)

    def work(url: str) -> tuple[str, str | None]:
        data = fetch(url)
        return url, (phash_hex(data) if data else None)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(work, sorted(by_url)))
    for url, digest in results:
        if digest is None:
            stats["failed"] += 1
            continue
        stats["fetched"] += 1
        for r in by_url[url]:
            r.phash = digest
            listing = session.get(Listing, r.id)
            if listing is not None:
                listing.image_phash = digest
    return stats


def _raise_for_queue(listing: Listing, evidence: dict[str, Any]) -> None:
    if listing.verdict not in QUEUE_VERDICTS:
        evidence["queue"] = {
            "raised_to": RAISED_VERDICT,
            "scorer_verdict": listing.verdict,
            "why": "relisting of a requested/removed listing: reviewed whatever its words score",
        }
        listing.verdict = RAISED_VERDICT


def detect_relistings(
    session: Session,
    *,
    sweep_run_id: int | None = None,
    since: datetime | None = None,
    fetch_image: ImageFetcher | None = None,
    now: datetime | None = None,
    actor: str = "tertib",
    title_threshold: float = TITLE_THRESHOLD,
    image_max: int = IMAGE_MAX_DISTANCE,
    image_strict: int = IMAGE_STRICT_DISTANCE,
    image_conflict: int = IMAGE_CONFLICT_DISTANCE,
    workers: int = IMAGE_WORKERS,
) -> list[RelistMatch]:
    """Flag new listings that relist a requested or removed one; returns the new matches (listing order)."""
    from rapidfuzz import fuzz, process

    now = now or datetime.now(UTC)
    # 1. Parents.
    parent_rows = parents(session)
    # 2. New listings (and re-raise already flagged ones seen again).
    fresh = new_listings(session, sweep_run_id=sweep_run_id, since=since)
    seen_again: list[Listing] = []
    if sweep_run_id is not None:
        seen_again = list(
            session.scalars(
                select(Listing).where(
                    Listing.relist_of_id.is_not(None),
                    Listing.id.in_(select(Sighting.listing_id).where(Sighting.sweep_run_id == sweep_run_id)),
                )
            )
        )
    for seen in [*fresh, *seen_again]:
        if seen.relist_of_id is not None and seen.verdict not in QUEUE_VERDICTS:
            kept = dict(seen.relist_evidence or {})
            _raise_for_queue(seen, kept)
            seen.relist_evidence = kept
    candidates = [x for x in fresh if x.relist_of_id is None]
    if not candidates or not parent_rows:
        return []
    child_rows = _rows(session, candidates)
    # 3. Pairs: the child came after the parent and not before the parent's request.
    plist = sorted(parent_rows.values(), key=lambda r: r.id)
    pairs: dict[int, list[int]] = {}
    for c in child_rows.values():
        ok = [
            i
            for i, p in enumerate(plist)
            if p.id != c.id
            and c.first_seen > p.first_seen
            and p.since is not None
            and c.first_seen >= p.since
        ]
        if ok:
            pairs[c.id] = ok
    if not pairs:
        return []
    # 4. Signals: titles for every pair at once, images fetched once per listing in a pair.
    involved_parents = {i for ok in pairs.values() for i in ok}
    involved = [*(child_rows[c] for c in pairs), *(plist[i] for i in sorted(involved_parents))]
    if fetch_image is not None:
        image_stats = _hash_images(session, involved, fetch_image, workers)
    else:
        import httpx

        with httpx.Client(timeout=IMAGE_TIMEOUT, follow_redirects=True) as client:
            image_stats = _hash_images(session, involved, lambda url: http_image(url, client), workers)
    child_ids = sorted(pairs)
    scores = process.cdist(
        [child_rows[c].norm_title for c in child_ids],
        [p.norm_title for p in plist],
        scorer=fuzz.token_set_ratio,
        workers=1,
    )
    matches: list[RelistMatch] = []
    for ci, cid in enumerate(child_ids):
        child = child_rows[cid]
        best: tuple[tuple[int, int, float], _Row, dict[str, Any], str] | None = None
        for pi in pairs[cid]:
            parent = plist[pi]
            sig = pair_signals(
                child, parent, float(scores[ci][pi]), title_threshold=title_threshold, image_max=image_max
            )
            # 5. Decide.
            rule = decide(sig, image_strict=image_strict, image_conflict=image_conflict)
            if rule is None:
                continue
            rank = _rank(sig)
            if best is None or rank < best[0]:
                best = (rank, parent, sig, rule)
        if best is None:
            continue
        _rank_key, parent, sig, rule = best
        # 6. Flag, custody, queue.
        signals = [k for k in ("seller", "handle", "title", "image") if sig[k]]
        evidence: dict[str, Any] = {
            "parent_id": parent.id,
            "parent_key": parent.key,
            "rule": rule,
            "signals": signals,
            "title_score": sig["title_score"],
            "image_distance": sig["image_distance"],
            "shared_handles": sig["shared_handles"],
            "same_seller": sig["seller"],
            "thresholds": {
                "title": title_threshold,
                "image_max": image_max,
                "image_strict": image_strict,
                "image_conflict": image_conflict,
            },
            "sweep_run_id": sweep_run_id,
            "detected_at": now.isoformat(),
        }
        flagged = session.get(Listing, cid)
        assert flagged is not None
        _raise_for_queue(flagged, evidence)
        flagged.relist_of_id = parent.id
        flagged.relist_evidence = evidence
        custody.append(
            session,
            actor=actor,
            action="relist",
            object_type="listing",
            object_id=child.key,
            details={"listing_id": cid, **evidence},
            at=now,
        )
        matches.append(RelistMatch(cid, child.key, parent.id, parent.key, signals, evidence))
    session.flush()
    logger.info(
        "relisting: %d new listings, %d parents, %d matches, images %s",
        len(candidates),
        len(parent_rows),
        len(matches),
        image_stats,
    )
    return matches
