"""Console page speed at scale: 1,000,000 listings and 100,000 candidates in SQLite.

Builds a database with raw ``executemany`` bulk inserts (listings, sellers, scores for candidates, review
decisions for a fifth of them, sweep runs with stats, takedown batches with items, sends and rechecks),
then times the review queue page (first card and a card deep in the queue) and the dashboard through the
real app in-process (``fastapi.testclient``: request → handler → template → response, no network), median
of ``--repeat`` runs after a warm-up. Then it creates the candidate indexes (:data:`EXTRA_INDEXES`, the
migration request for ``storage/models.py``), runs ``ANALYZE`` and times again, printing both and the ratio.

Usage: ``python bench/console_pages.py [--listings 1000000] [--candidates 100000] [--repeat 9] [--keep DIR]``
Target: each page under 200 ms server time.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from crawler.config import Settings, load_settings  # noqa: E402
from storage.db import Database  # noqa: E402

PLATFORMS = ("tokopedia", "shopee", "lazada", "blibli", "facebook", "instagram", "tiktokshop")
# What the console needs beyond storage/models.py (proposed as a migration; created here to prove the effect).
EXTRA_INDEXES: dict[str, str] = {
    "ix_listings_relist_of": "CREATE INDEX IF NOT EXISTS ix_listings_relist_of ON listings (relist_of_id)",
    "ix_listings_seller_last_seen": "CREATE INDEX IF NOT EXISTS ix_listings_seller_last_seen "
    "ON listings (seller_id, last_seen)",
    "ix_review_decisions_listing_decided": "CREATE INDEX IF NOT EXISTS ix_review_decisions_listing_decided "
    "ON review_decisions (listing_id, decided_at, id)",
    "ix_listings_queue": "CREATE INDEX IF NOT EXISTS ix_listings_queue ON listings (score_value DESC, id) "
    "WHERE verdict IN ('strong', 'candidate')",
    "ix_scores_listing_created": "CREATE INDEX IF NOT EXISTS ix_scores_listing_created "
    "ON scores (listing_id, created_at, id)",
    "ix_sweep_runs_kind_started": "CREATE INDEX IF NOT EXISTS ix_sweep_runs_kind_started "
    "ON sweep_runs (kind, started_at)",
    "ix_batch_sends_batch_sent": "CREATE INDEX IF NOT EXISTS ix_batch_sends_batch_sent "
    "ON batch_sends (batch_id, sent_at)",
    "ix_rechecks_verdict_item": "CREATE INDEX IF NOT EXISTS ix_rechecks_verdict_item "
    "ON rechecks (verdict, takedown_item_id, checked_at)",
}


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, listings: int, candidates: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    cur = con.cursor()
    sellers = max(1, listings // 50)
    cur.executemany(
        "INSERT INTO sellers (id, platform, platform_seller_id, name, city, shop_url, contact_handles, "
        "first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            (
                i,
                PLATFORMS[i % len(PLATFORMS)],
                str(i),
                f"Toko {i}",
                "Bandung",
                None,
                json.dumps([f"wa:62812{i % 5000:07d}"]),
                ts(t0),
                ts(t0),
            )
            for i in range(1, sellers + 1)
        ),
    )
    step = max(1, listings // candidates)
    candidate_ids = set(range(1, listings + 1, step)[:candidates])

    def listing_rows() -> object:
        for i in range(1, listings + 1):
            cand = i in candidate_ids
            score = round(rng.uniform(0.6, 1.0), 4) if cand else round(rng.uniform(0.0, 0.59), 4)
            verdict = (
                ("strong" if score >= 0.85 else "candidate")
                if cand
                else ("weak" if score >= 0.3 else "clear")
            )
            seen = ts(t0 + timedelta(seconds=i))
            platform = PLATFORMS[i % len(PLATFORMS)]
            yield (
                i,
                f"{platform}:{i}",
                platform,
                str(i),
                f"https://{platform}.example/p/{i}",
                f"Bal korea isi {i % 500} pcs campur grade A" if cand else f"Kaos polos baru {i}",
                "",
                100_000 + i % 9_000_000,
                1 + i % sellers,
                "[]",
                "{}",
                seen,
                seen,
                score,
                verdict,
                "{}",
            )

    cur.executemany(
        "INSERT INTO listings (id, listing_key, platform, platform_listing_id, url, title, description, "
        "price, seller_id, contact_handles, extra_ids, first_seen, last_seen, score_value, verdict, "
        "relist_evidence) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        listing_rows(),  # type: ignore[arg-type]
    )
    explanation = json.dumps({"signals": [{"term": "bal", "span": [0, 3], "weight": 0.5}]})
    cur.executemany(
        "INSERT INTO scores (listing_id, value, verdict, explanation, scorer_version, created_at) "
        "VALUES (?,?,?,?,?,?)",
        ((i, 0.9, "strong", explanation, "bench", ts(t0)) for i in sorted(candidate_ids)),
    )
    decided = sorted(candidate_ids)[: len(candidate_ids) // 5]
    cur.executemany(
        "INSERT INTO review_decisions (listing_id, decision, reason, note, reviewer, simulated, decided_at) "
        "VALUES (?,?,?,?,?,?,?)",
        (
            (i, "approve" if n % 4 else "reject", None if n % 4 else "other", "", "bench", 0, ts(t0))
            for n, i in enumerate(decided)
        ),
    )
    stats = json.dumps({p: {"listings": 500, "candidates": 40, "blocked": 0} for p in PLATFORMS})
    cur.executemany(
        "INSERT INTO sweep_runs (kind, trigger, platforms, started_at, status, stats, needs_attention, "
        "queries) "
        "VALUES ('sweep','schedule','[]',?,'completed',?,'[]','[]')",
        ((ts(t0 + timedelta(days=d)), stats) for d in range(200)),
    )
    approved = [i for n, i in enumerate(decided) if n % 4]
    per_batch = 1000
    item_id = 0
    for b in range(len(approved) // per_batch):
        created = t0 + timedelta(days=b)
        cur.execute(
            "INSERT INTO takedown_batches (id, number, name, created_at, created_by, details) "
            "VALUES (?,?,?,?,?,'{}')",
            (b + 1, f"TTB-2026-{b + 1:04d}", f"bench {b}", ts(created), "bench"),
        )
        chunk = approved[b * per_batch : (b + 1) * per_batch]
        rows = []
        for row_no, lid in enumerate(chunk, 1):
            item_id += 1
            rows.append(
                (item_id, b + 1, lid, PLATFORMS[lid % len(PLATFORMS)], row_no, f"https://x/{lid}", "{}")
            )
        cur.executemany(
            "INSERT INTO takedown_items (id, batch_id, listing_id, platform, row_no, url, snapshot) "
            "VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        for p in PLATFORMS:
            cur.execute(
                "INSERT INTO batch_sends (batch_id, platform, channel, sent_at, recorded_by, recorded_at) "
                "VALUES (?,?,?,?,?,?)",
                (b + 1, p, "portal", ts(created + timedelta(hours=4)), "bench", ts(created)),
            )
        cur.executemany(
            "INSERT INTO rechecks (takedown_item_id, listing_id, round_days, checked_at, verdict, rule, "
            "signal, "
            "attempt) VALUES (?,?,?,?,?,?,'',1)",
            (
                (r[0], r[2], rnd, ts(created + timedelta(days=rnd, minutes=r[0] % 600)), v, "bench")
                for r in rows
                for rnd, v in ((1, "LIVE"), (3, "REMOVED" if r[0] % 3 else "LIVE"))
            ),
        )
    con.commit()
    con.close()


USER, PASSWORD = "bench", "bench-password"


def prepare(data: Path, listings: int, candidates: int) -> tuple[Settings, Database]:
    """The installation in ``data``: built (with the bench user) unless it is there already."""
    from console import auth

    data.mkdir(parents=True, exist_ok=True)
    settings = load_settings(env={}, data_dir=data)
    db = Database(settings.db_url)
    db.migrate()
    with db.session() as s:
        fresh = not auth.list_users(s)
    if fresh:
        started = time.perf_counter()
        db.dispose()
        build(data / "tertib.sqlite3", listings, candidates)
        with db.session() as s:
            auth.add_user(s, USER, "analyst", PASSWORD, actor="bench")
        took = time.perf_counter() - started
        print(f"built {listings:,} listings / {candidates:,} candidates in {took:.1f} s")
    return settings, db


def measure(client: object, paths: list[str], repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for path in paths:
        response = client.get(path)  # type: ignore[attr-defined]
        assert response.status_code == 200, (path, response.status_code)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(path)  # type: ignore[attr-defined]
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        out[path] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the data dir here.")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from console.app import create_app

    data = args.keep or Path(tempfile.mkdtemp(prefix="tertib-console-bench-"))
    settings, db = prepare(data, args.listings, args.candidates)
    from console.paging import cursor
    from crawler import review
    from storage.models import Capture

    with db.session() as s:
        deep = review.review_queue(s, limit=1, offset=49_999)[0]
        oldest = int(s.scalar(select(func.min(Capture.id))) or 0)
    key = cursor(deep.score, deep.listing_id)
    # offsets (a typed-in ?pos=) against keys (how the card's next/previous and the list's pages move)
    paths = [
        "/review",
        "/review?pos=50000",
        f"/review?after={key}&pos=50000",
        f"/review/list?after={key}&start=50000",
        "/",
    ]
    if oldest:
        paths.append(f"/evidence?before={oldest + 60}")
    results: list[dict[str, float]] = []
    for label in ("schema indexes", "with EXTRA_INDEXES"):
        if label != "schema indexes":
            with db.engine.begin() as conn:
                for sql in EXTRA_INDEXES.values():
                    conn.exec_driver_sql(sql)
                conn.exec_driver_sql("ANALYZE")
        with TestClient(create_app(settings, db)) as client:
            r = client.post("/login", data={"username": USER, "password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303
            results.append(measure(client, paths, args.repeat))
    print(f"{'page':44} {'schema idx ms':>14} {'+extra idx ms':>14} {'ratio':>7}  target < 200 ms")
    for path in paths:
        a, b = results[0][path], results[1][path]
        label = path.replace(key, "<50,000th>")
        print(f"{label[:44]:44} {a:14.1f} {b:14.1f} {a / b:7.2f}  {'OK' if b < 200 else 'SLOW'}")
    db.dispose()


if __name__ == "__main__":
    main()
