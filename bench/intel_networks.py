"""Benchmark: dealer networks over 1,000,000 sightings (target < 2 minutes), against a bare read of them.

Run: ``.venv/bin/python bench/intel_networks.py [--sightings 1000000] [--per-listing 5] [--seed 3]
[--json out.json]``.

1. A fresh SQLite database (migrated) is filled with Core inserts: merchants with 1–8 accounts on the
   platforms, sharing a WhatsApp handle on most accounts (some show none), near-identical shop names, some
   resellers reposting a wholesaler's photo hash; ``--sightings / --per-listing`` listings, every listing
   sighted ``--per-listing`` times over 30 days with growing sold counts (exact, rounded "rb" and "100+"
   floors), stock that is sometimes refilled, a price and units. Most listings are suspect (strong or
   candidate verdict).
2. **baseline**: a streaming read of every sighting's volume columns in (listing, time) order, the same
   query the networks start with, doing nothing with the rows.
3. **networks**: :func:`crawler.intel.networks.compute_networks` on the same database (a fresh session).
4. Check: the networks' grouping against the generated merchants (:func:`crawler.intel.measure.compare`)
   must have precision and recall ≥ 0.95, or the exit code is 1 (a fast but wrong run cannot pass).

Prints seconds for both, the ratio networks/baseline, peak RSS, and whether it beat 120 s.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from crawler.intel.measure import compare  # noqa: E402
from crawler.intel.networks import compute_networks  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Listing, Seller, Sighting  # noqa: E402

PLATFORMS = ("tokopedia", "shopee", "lazada", "blibli", "tiktokshop", "facebook", "instagram")
WORDS = ("Bal", "Gudang", "Thrift", "Monza", "Cakar", "Grosir", "Import", "Bundle", "Second")
NAMES = ("Rina", "Dewi", "Agus", "Budi", "Siti", "Andi", "Yudi", "Fitri", "Rizky", "Putri", "Hendra", "Wulan")
CITIES = ("Medan", "Batam", "Bandung", "Surabaya", "Jakarta Utara", "Makassar", "Pontianak", "Pekanbaru")
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def build(db: Database, n_sightings: int, per_listing: int, seed: int) -> list[dict[str, Any]]:
    """Step 1: the database; returns the truth (merchant → accounts) for the check."""
    rng = random.Random(seed)
    n_listings = n_sightings // per_listing
    sellers: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    merchant = 0
    while sum(len(t["accounts"]) for t in truth) < n_listings // 5:
        merchant += 1
        size = rng.choice((1, 1, 2, 2, 3, 4, 6, 8))
        handle = f"wa:628{merchant:09d}"
        name = f"{rng.choice(WORDS)} {rng.choice(NAMES)} {merchant}"
        city = rng.choice(CITIES)
        accounts = []
        for platform in rng.sample(PLATFORMS, min(size, len(PLATFORMS))):
            sid = f"{merchant}{rng.randrange(10**6)}"
            shows = size == 1 or rng.random() < 0.9 or not accounts
            sellers.append(
                {
                    "id": len(sellers) + 1,
                    "platform": platform,
                    "platform_seller_id": sid,
                    "name": name,
                    "city": city,
                    "shop_url": None,
                    "contact_handles": [handle] if shows else [],
                    "first_seen": T0,
                    "last_seen": T0 + timedelta(days=30),
                }
            )
            accounts.append(f"{platform}:{sid}")
        truth.append({"id": f"m{merchant}", "role": "wholesale", "accounts": accounts, "volume_units": 0})
    with db.engine.begin() as conn:
        conn.execute(insert(Seller), sellers)
    listings: list[dict[str, Any]] = []
    photos: list[str] = []
    for i in range(n_listings):
        seller = sellers[i % len(sellers)]
        phash = f"{rng.getrandbits(64):016x}"
        if photos and rng.random() < 0.05:
            phash = rng.choice(photos)  # a reseller reposts a photo
        elif rng.random() < 0.1:
            photos.append(phash)
        listings.append(
            {
                "id": i + 1,
                "listing_key": f"{seller['platform']}:L{i}",
                "platform": seller["platform"],
                "platform_listing_id": f"L{i}",
                "url": f"https://example.test/{i}",
                "title": f"Bal {rng.choice(NAMES)} isi {rng.choice((200, 300, 500))} pcs",
                "description": "",
                "price": rng.randrange(1_000_000, 9_000_000, 50_000),
                "seller_id": seller["id"],
                "image_phash": phash,
                "contact_handles": [],
                "extra_ids": {},
                "relist_evidence": {},
                "origin_facts": [],
                "first_seen": T0,
                "last_seen": T0 + timedelta(days=30),
                "verdict": "strong" if rng.random() < 0.8 else "candidate",
                "score_value": 0.9,
            }
        )
    with db.engine.begin() as conn:
        for start in range(0, len(listings), 50_000):
            conn.execute(insert(Listing), listings[start : start + 50_000])
    rows: list[dict[str, Any]] = []
    with db.engine.begin() as conn:
        for listing in listings:
            sold = rng.randrange(0, 3000)
            stock = rng.randrange(10, 500)
            shape = rng.random()
            for k in range(per_listing):
                sold += rng.randrange(0, 40)
                stock = stock - rng.randrange(0, 5) if rng.random() < 0.8 else stock + 200
                if shape < 0.4:
                    low, high, precision = sold, sold, "exact"
                elif shape < 0.7:
                    low, high, precision = sold // 100 * 100, None, "at_least"
                elif shape < 0.9:
                    low = sold // 100 * 100
                    high, precision = low + 99, "rounded"
                else:
                    low = high = precision = None  # no sold field
                rows.append(
                    {
                        "listing_id": listing["id"],
                        "seen_at": T0 + timedelta(days=k * 30 // per_listing),
                        "query": "bal",
                        "page": 1,
                        "rank": 1,
                        "sponsored": False,
                        "raw": {},
                        "price": listing["price"],
                        "sold_low": low,
                        "sold_high": high,
                        "sold_precision": precision,
                        "stock": max(0, stock),
                        "unit_kind": "bale",
                        "unit_pieces": 300,
                        "unit_kg": None,
                    }
                )
            if len(rows) >= 100_000:
                conn.execute(insert(Sighting), rows)
                rows = []
        if rows:
            conn.execute(insert(Sighting), rows)
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sightings", type=int, default=1_000_000)
    parser.add_argument("--per-listing", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tertib-bench-intel-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        db.migrate()
        t0 = time.monotonic()
        truth = build(db, args.sightings, args.per_listing, args.seed)
        db.analyze()
        print(f"built {args.sightings:,} sightings in {time.monotonic() - t0:.0f} s", flush=True)
        # 2. baseline: read every sighting once
        t0 = time.monotonic()
        with db.session() as s:
            count = 0
            query = (
                select(
                    Sighting.listing_id,
                    Sighting.seen_at,
                    Sighting.price,
                    Sighting.sold_low,
                    Sighting.sold_high,
                    Sighting.sold_precision,
                    Sighting.stock,
                    Sighting.unit_kind,
                    Sighting.unit_pieces,
                    Sighting.unit_kg,
                )
                .order_by(Sighting.listing_id, Sighting.seen_at, Sighting.id)
                .execution_options(yield_per=50_000)
            )
            for _row in s.execute(query):
                count += 1
        baseline = time.monotonic() - t0
        # 3. networks
        t0 = time.monotonic()
        with db.session() as s:
            networks = compute_networks(s)
        elapsed = time.monotonic() - t0
        # 4. check
        figures = compare([n.to_dict() for n in networks], truth)
        db.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    g = figures["grouping"]
    result = {
        "sightings": count,
        "networks": len(networks),
        "baseline_s": round(baseline, 1),
        "networks_s": round(elapsed, 1),
        "ratio": round(elapsed / baseline, 2),
        "peak_rss_mb": round(rss),
        "precision": g["precision"],
        "recall": g["recall"],
        "target_s": 120,
        "ok": elapsed < 120,
    }
    print(
        f"networks over {count:,} sightings: {elapsed:.1f} s ({len(networks):,} networks) vs bare read "
        f"{baseline:.1f} s = {result['ratio']}x; peak RSS {rss:.0f} MB; grouping precision {g['precision']} "
        f"recall {g['recall']}; target < 120 s {'✅' if elapsed < 120 else '❌'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if g["precision"] < 0.95 or g["recall"] < 0.95:
        print("grouping below 0.95: a fast but wrong run does not count", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
