"""Benchmark: export N approved items as one takedown batch (CSV + XLSX + JSON + letters + manifest).

Usage: ``.venv/bin/python bench/export_throughput.py [--items 100000] [--platforms 4] [--keep DIR]``

1. A child process fills a fresh SQLite database with N listings (sellers, scores with signals, captures,
   approvals) through SQLAlchemy Core, so the measuring process starts small.
2. Baseline, in this process: the same eligible rows read with ``select_rows`` and written with the plain
   ``csv`` module — the floor any exporter has to pay.
3. The real export: :func:`crawler.exports.service.create_batch` (evidence bundle off: it is the
   evidence issue's cost, measured by its own benchmark).

Prints seconds and peak RSS (psutil, sampled every 20 ms) for both and the ratio. Targets: < 20 s and
< 500 MB RSS for 100,000 items.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from crawler.config import load_settings
from crawler.evidence.signing import ensure_keypair
from crawler.exports.common import zone
from crawler.exports.rows import COLUMNS, select_rows
from crawler.exports.service import create_batch
from crawler.exports.writers import row_values
from crawler.registry import default_registry
from storage.db import Database
from storage.models import Capture, Listing, ReviewDecision, Score, Seller

T = TypeVar("T")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
WORDS = [
    "bal",
    "korea",
    "karungan",
    "import",
    "jepang",
    "isi",
    "300",
    "pcs",
    "jaket",
    "kaos",
    "celana",
    "jeans",
]


def populate(url: str, items: int, platforms: int) -> None:
    db = Database(url)
    db.migrate()
    chosen = list(default_registry().names)[:platforms]
    n_sellers = max(1, items // 20)
    chunk = 5000
    with db.engine.begin() as conn:
        conn.execute(
            insert(Seller),
            [
                {
                    "id": i + 1,
                    "platform": chosen[i % len(chosen)],
                    "platform_seller_id": f"s{i}",
                    "name": f"Toko Bal {i}",
                    "city": "Jakarta",
                    "shop_url": f"https://shop.example/{i}",
                    "contact_handles": [f"wa:62812{i % (n_sellers // 2 + 1):07d}"],
                    "first_seen": T0,
                    "last_seen": T0,
                }
                for i in range(n_sellers)
            ],
        )
        for start in range(0, items, chunk):
            rng = range(start, min(items, start + chunk))
            listings, scores, captures, decisions = [], [], [], []
            for i in rng:
                seller = i % n_sellers
                platform = chosen[seller % len(chosen)]
                title = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(7)) + f" #{i}"
                listings.append(
                    {
                        "id": i + 1,
                        "listing_key": f"{platform}:{i}",
                        "platform": platform,
                        "platform_listing_id": str(i),
                        "url": f"https://{platform}.example/product/{i}?from=search",
                        "title": title,
                        "description": "",
                        "price": 1_000_000 + i,
                        "seller_id": seller + 1,
                        "contact_handles": [],
                        "extra_ids": {},
                        "first_seen": T0,
                        "last_seen": T0,
                        "score_value": 0.6 + (i % 40) / 100,
                        "verdict": "strong",
                        "relist_evidence": {},
                    }
                )
                signals = [
                    {"term": "bal", "span": [0, 3], "weight": 0.5, "matched": "bal"},
                    {"term": "ex korea", "span": [4, 9], "weight": 0.3, "matched": "korea"},
                ]
                scores.append(
                    {
                        "listing_id": i + 1,
                        "value": 0.9,
                        "verdict": "strong",
                        "explanation": {"signals": signals},
                        "scorer_version": "bench",
                        "created_at": T0,
                    }
                )
                captures.append(
                    {
                        "listing_key": f"{platform}:{i}",
                        "url": f"https://{platform}.example/product/{i}",
                        "observable": True,
                        "warc_sha256": f"{i:064x}",
                        "screenshot_sha256": f"{i + 7:064x}",
                        "records": [],
                        "metadata_json": {},
                        "purpose": "sweep",
                        "captured_at": T0 + timedelta(seconds=i),
                    }
                )
                decisions.append(
                    {
                        "listing_id": i + 1,
                        "decision": "approve",
                        "note": "",
                        "reviewer": "bench",
                        "simulated": True,
                        "decided_at": T0 + timedelta(days=1),
                    }
                )
            conn.execute(insert(Listing), listings)
            conn.execute(insert(Score), scores)
            conn.execute(insert(Capture), captures)
            conn.execute(insert(ReviewDecision), decisions)
    db.dispose()


def measure(fn: Callable[[], T]) -> tuple[T, float, float, float]:
    """(result, wall seconds, peak RSS in MB during the call, CPU seconds of this process).

    CPU seconds are reported beside wall time because the shared machine's load moves wall time by 2×.
    """
    proc = psutil.Process()
    peak = proc.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, proc.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        result = fn()
    finally:
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        done.set()
        thread.join()
    peak = max(peak, proc.memory_info().rss)
    return result, elapsed, peak / 1e6, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--platforms", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the work directory here.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tertib-bench-export-"))
    try:
        settings = load_settings(data_dir=work / "data")
        settings.data_dir.mkdir(parents=True)
        ensure_keypair(settings.keys_dir)
        # 1. populate in a child process
        start = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=populate, args=(settings.db_url, args.items, args.platforms)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("populate failed")
        print(f"populated {args.items:,} approved items in {time.perf_counter() - start:.1f} s")
        db = Database(settings.db_url)
        tz = zone(settings.timezone)

        # 2. baseline: same rows, plain csv
        def baseline() -> int:
            with db.session() as session:
                rows = select_rows(session)
            with (work / "baseline.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow([c.key for c in COLUMNS])
                writer.writerows(row_values(r, tz) for r in rows)
            return len(rows)

        count, base_s, base_mb, base_cpu = measure(baseline)

        # 3. the real export
        def real() -> Any:
            return create_batch(
                db, settings, name="bench", out=work / "out", actor="bench", with_bundle=False
            )

        result, export_s, export_mb, export_cpu = measure(real)
        sizes = {p.suffix: 0 for p in result.files}
        for path in result.files:
            sizes[path.suffix] += path.stat().st_size
        print(
            f"baseline  plain csv      {count:>7,} rows  {base_s:6.2f} s  (CPU {base_cpu:6.2f} s)"
            f"  peak RSS {base_mb:6.0f} MB"
        )
        print(
            f"export    csv+xlsx+json  {result.item_count:>7,} rows  {export_s:6.2f} s"
            f"  (CPU {export_cpu:6.2f} s)"
            f"  peak RSS {export_mb:6.0f} MB  ({export_s / base_s:.1f}× baseline time)"
        )
        print(
            "files     "
            + ", ".join(f"{ext or 'other'} {size / 1e6:.1f} MB" for ext, size in sorted(sizes.items()))
        )
        ok = export_s < 20 and export_mb < 500
        print(
            f"target    < 20 s and < 500 MB: {'met' if ok else 'NOT met'}"
            f"  (load average {os.getloadavg()[0]:.1f})"
        )
        db.dispose()
    finally:
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
