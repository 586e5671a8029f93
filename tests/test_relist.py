"""Relisting detection on hand-built listings and on the sandbox's ground truth."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.audit.relist import decide, detect_relistings, hamming, phash_hex
from crawler.review import review_queue
from sandbox.images import image_bytes
from storage import custody
from storage import repositories as repo
from storage.db import Database
from storage.models import BatchSend, CustodyEntry, Listing, Sighting, TakedownBatch, TakedownItem

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
D = timedelta(days=1)
PARENT_SEED = "00000000000000a1"  # its "~1" variant is within 4 bits (checked below)
OTHER_SEED = "00000000000000b7"


def seed_fetcher(calls: Counter[str]):  # type: ignore[no-untyped-def]
    """Serve sandbox images from ``https://img.test/{seed}.jpg`` without a server; counts fetches."""

    def fetch(url: str) -> bytes | None:
        calls[url] += 1
        seed = unquote(url.rsplit("/", 1)[1].removesuffix(".jpg"))
        return None if seed == "missing" else image_bytes(seed)

    return fetch


def add(
    session: Session,
    key: str,
    *,
    seller: str | None,
    title: str,
    seed: str,
    handles: list[str] | None = None,
    seen: datetime,
    verdict: str = "strong",
) -> int:
    platform, _, lid = key.partition(":")
    data = {
        "listing_key": key,
        "platform": platform,
        "listing_id": lid,
        "url": f"https://{platform}.test/{lid}",
        "title": title,
        "seller_id": seller,
        "seller_name": seller,
        "image_url": f"https://img.test/{seed}.jpg",
        "contact_handles": handles or [],
    }
    listing_id, _ = repo.upsert_listing(session, data, seen_at=seen)
    listing = session.get(Listing, listing_id)
    assert listing is not None
    listing.verdict = verdict
    listing.score_value = 0.9 if verdict == "strong" else 0.2
    return listing_id


def request(
    session: Session, listing_ids: list[int], sent_at: datetime, number: str = "TTB-2026-0001"
) -> None:
    batch = TakedownBatch(number=number, name="t", created_at=sent_at - timedelta(hours=1))
    session.add(batch)
    session.flush()
    platforms = set()
    for n, lid in enumerate(listing_ids, start=1):
        listing = session.get(Listing, lid)
        assert listing is not None
        platforms.add(listing.platform)
        session.add(
            TakedownItem(
                batch_id=batch.id, listing_id=lid, platform=listing.platform, row_no=n, url=listing.url
            )
        )
    for p in sorted(platforms):
        session.add(BatchSend(batch_id=batch.id, platform=p, channel="sandbox", sent_at=sent_at))
    session.flush()


def test_variant_seeds_are_close() -> None:
    parent = phash_hex(image_bytes(PARENT_SEED))
    assert parent is not None
    assert hamming(parent, phash_hex(image_bytes(PARENT_SEED + "~1")) or "") <= 4
    assert hamming(parent, phash_hex(image_bytes(PARENT_SEED + "~2")) or "") <= 10
    assert hamming(parent, phash_hex(image_bytes(OTHER_SEED)) or "") > 10
    assert phash_hex(b"not an image") is None


def test_decide_rules() -> None:
    base = {"seller": False, "handle": False, "title": False, "image": False, "image_distance": None}
    assert decide({**base, "handle": True}, image_strict=4) is None  # a sibling listing, not a relisting
    assert decide({**base, "seller": True}, image_strict=4) is None
    assert decide({**base, "title": True}, image_strict=4) is None  # generic titles recur across shops
    assert (
        decide({**base, "image": True, "image_distance": 8, "handle": True}, image_strict=4)
        == "image+identity"
    )
    assert (
        decide({**base, "image": True, "image_distance": 8, "title": True}, image_strict=4) == "image+title"
    )
    assert decide({**base, "title": True, "seller": True}, image_strict=4) == "title+identity"
    assert decide({**base, "image": True, "image_distance": 0}, image_strict=0) == "image_strict"
    assert decide({**base, "image": True, "image_distance": 3}, image_strict=0) is None  # collisions happen
    # the same template title from the same shop on a clearly different picture is another product
    assert decide({**base, "title": True, "seller": True, "image_distance": 30}, image_strict=0) is None
    assert (
        decide({**base, "title": True, "seller": True, "image_distance": 14}, image_strict=0)
        == "title+identity"
    )


def test_hand_built_relistings(db: Database) -> None:
    calls: Counter[str] = Counter()
    wa = "wa:6281234567890"
    with db.session() as s:
        parent = add(
            s,
            "tokopedia:1",
            seller="shopA",
            title="Bal korea isi 300 pcs",
            seed=PARENT_SEED,
            handles=[wa],
            seen=T0,
        )
        sibling_old = add(
            s,
            "tokopedia:2",
            seller="shopA",
            title="Kemeja flanel",
            seed="00000000000000c3",
            handles=[wa],
            seen=T0,
        )
        request(s, [parent], T0 + D)
        later = T0 + 5 * D
        same_shop = add(
            s,
            "tokopedia:10",
            seller="shopA",
            title="Karungan hoodie ex japan",
            seed=PARENT_SEED + "~2",
            seen=later,
            verdict="weak",
        )
        new_shop = add(
            s,
            "shopee:11.12",
            seller="shopB",
            title="Thrift jaket pilihan",
            seed=PARENT_SEED + "~3",
            handles=[wa],
            seen=later,
            verdict="clear",
        )
        sibling = add(
            s,
            "tokopedia:13",
            seller="shopA",
            title="Bal korea isi 300 pcs",
            seed=OTHER_SEED,
            handles=[wa],
            seen=later,
        )
        same_title = add(
            s,
            "lazada:14",
            seller="shopC",
            title="bal KOREA isi 300 pcs!!",
            seed="00000000000000d9",
            seen=later,
        )
        same_title_shop = add(
            s,
            "tokopedia:15",
            seller="shopA",
            title="Bal korea isi 300 pcs murah",
            seed="missing",  # no picture to compare: the title and the shop decide
            seen=later,
        )
        image_only = add(
            s, "facebook:16", seller="fb9", title="Dijual baju", seed=PARENT_SEED + "~1", seen=later
        )
        no_image = add(
            s, "blibli:17", seller="shopD", title="Sweater", seed="missing", handles=[wa], seen=later
        )
        before_request = add(
            s,
            "shopee:18.19",
            seller="shopE",
            title="Bal",
            seed=PARENT_SEED + "~4",
            handles=[wa],
            seen=T0 + timedelta(hours=2),
        )

        matches = detect_relistings(
            s, since=T0 + 2 * D, fetch_image=seed_fetcher(calls), now=later, actor="t"
        )
        found = {m.listing_id: m for m in matches}
        assert set(found) == {same_shop, new_shop, same_title_shop, image_only}
        assert found[same_shop].evidence["rule"] == "image+identity"
        assert found[same_shop].signals == ["seller", "handle", "image"]  # the shop carries the handle
        assert found[new_shop].signals == ["handle", "image"]
        assert found[new_shop].evidence["shared_handles"] == [wa]
        assert found[same_title_shop].evidence["rule"] == "title+identity"
        assert found[image_only].evidence["rule"] == "image_strict"
        assert all(m.parent_id == parent for m in matches)
        for lid in (sibling, same_title, no_image, before_request, sibling_old):
            assert s.get(Listing, lid).relist_of_id is None  # type: ignore[union-attr]

        # weak/clear relistings enter the review queue as candidates, with the reason kept
        weak = s.get(Listing, same_shop)
        assert weak is not None and weak.relist_of_id == parent and weak.verdict == "candidate"
        assert weak.relist_evidence["queue"]["scorer_verdict"] == "weak"
        assert weak.image_phash is not None
        queued = {q.listing_id for q in review_queue(s, limit=100)}
        assert {same_shop, new_shop} <= queued
        entries = s.scalars(select(CustodyEntry).where(CustodyEntry.action == "relist")).all()
        assert sorted(e.object_id for e in entries) == sorted(m.listing_key for m in matches)
        assert custody.verify(s) == []

        # hashes are cached: a second pass fetches nothing new and flags nothing twice
        fetched = sum(calls.values())
        assert detect_relistings(s, since=T0 + 2 * D, fetch_image=seed_fetcher(calls), now=later) == []
        assert sum(calls.values()) - fetched == 1  # only the missing image is tried again
        assert max(calls.values()) <= 2


def test_sweep_run_scope_and_requeue(db: Database) -> None:
    calls: Counter[str] = Counter()
    with db.session() as s:
        parent = add(s, "tokopedia:1", seller="shopA", title="Bal korea", seed=PARENT_SEED, seen=T0)
        request(s, [parent], T0 + D)
        run_id = repo.start_run(s, platforms=["tokopedia"])
        started = repo.now()
        child = add(s, "tokopedia:2", seller="shopA", title="Karungan", seed=PARENT_SEED + "~2", seen=started)
        elsewhere = add(
            s, "tokopedia:3", seller="shopA", title="Rombengan", seed=PARENT_SEED + "~5", seen=started
        )
        s.add(Sighting(listing_id=child, sweep_run_id=run_id, seen_at=started))
        s.flush()
        matches = detect_relistings(s, sweep_run_id=run_id, fetch_image=seed_fetcher(calls))
        assert [m.listing_id for m in matches] == [child]
        assert s.get(Listing, elsewhere).relist_of_id is None  # type: ignore[union-attr]
        # a later sweep re-scores the listing as weak; seeing it again puts it back in the queue
        run2 = repo.start_run(s, platforms=["tokopedia"])
        listing = s.get(Listing, child)
        assert listing is not None
        listing.verdict = "weak"
        s.add(Sighting(listing_id=child, sweep_run_id=run2, seen_at=repo.now()))
        s.flush()
        assert detect_relistings(s, sweep_run_id=run2, fetch_image=seed_fetcher(calls)) == []
        assert listing.verdict == "candidate"


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
@pytest.mark.slow
@pytest.mark.integration
def test_sandbox_truth_precision_recall(db: Database) -> None:
    """Takedowns on the sandbox create relistings (new words, new shop, same handle; altered image).

    New listings = every relisting plus the parents' sibling listings and other listings first seen at the
    same time (the hard negatives: same trader, same handle). Images are fetched over HTTP from the sandbox.
    """
    from sandbox.catalog import generate, listing_path
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    catalog = generate(11, 2500)
    state = SandboxState(catalog, seed=11)
    rng = random.Random(3)
    illegal = [x for x in catalog if x.label == "illegal_import" and x.platform != "bukalapak"]
    parents = rng.sample(illegal, 250)
    state.takedown([p.key for p in parents])
    state.clock.advance(30)
    relisted = state.truth(include_listings=False)["relistings"]
    children = [c for c in (state.get_by_key(k) for k in relisted) if c is not None]
    parent_keys = {p.key for p in parents}
    handles = {h for p in parents for h in p.contact_handles}
    # Bukalapak has no search (recheck-only), so its listings are never "new" in a sweep
    siblings = [
        x
        for x in catalog
        if x.key not in parent_keys and x.platform != "bukalapak" and set(x.contact_handles) & handles
    ]
    sibling_keys = {x.key for x in siblings}
    others = rng.sample(
        [x for x in catalog if x.key not in parent_keys | sibling_keys and x.platform != "bukalapak"], 60
    )
    negatives = rng.sample(siblings, min(80, len(siblings))) + others
    assert len(children) >= 20

    with SandboxServer(state) as root, db.session() as s:

        def put(x, seen: datetime) -> int:  # type: ignore[no-untyped-def]
            host, path = listing_path(x)
            data = {
                "listing_key": x.key,
                "platform": x.platform,
                "listing_id": x.listing_id,
                "url": f"{root}/{host}{path}",
                "title": x.title,
                "seller_id": x.seller_id,
                "seller_name": x.seller_name,
                "image_url": f"{root}/{x.platform}/img/{x.image_seed}.jpg",
                "contact_handles": x.contact_handles,
            }
            return repo.upsert_listing(s, data, seen_at=seen)[0]

        ids = {p.key: put(p, T0) for p in parents}
        request(s, list(ids.values()), T0 + D)
        later = T0 + 20 * D
        for x in [*children, *negatives]:
            put(x, later)
        matches = detect_relistings(s, since=T0 + 2 * D, now=later)

    flagged = {m.listing_key: m.parent_key for m in matches}
    expected = {c.key: c.relist_of for c in children}
    correct = sum(1 for k, parent in flagged.items() if expected.get(k) == parent)
    precision = correct / max(1, len(flagged))
    recall = correct / len(expected)
    strategies = Counter(c.extra.get("relist_strategy") for c in children if c.key in flagged)
    print(
        f"relisting precision {precision:.3f} recall {recall:.3f} on {len(expected)} relistings, "
        f"{len(negatives)} hard negatives; found by strategy {dict(strategies)}"
    )
    assert precision >= 0.9 and recall >= 0.9
    assert (
        strategies["new_shop"] > 0 and strategies["same_handle"] > 0
    )  # new shop + new words, reused picture
