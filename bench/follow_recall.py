"""Seller following, measured against the sandbox's truth: does one follow round find what keyword search
cannot?

1. A sandbox (in this process) serving a generated catalog with five fresh pseudo drift words.
2. ``tertib sweep`` over Tokopedia, Lazada and Blibli (3 pages per query, ``--details none``).
3. A clearly labelled simulated reviewer approves every listing scoring *strong*; the sandbox's takedown
   intake receives them and the clock moves on ``--days`` days, so platforms remove some and sellers relist
   (some in the same shop under new words).
4. Truth: every listing now live in the shops of the confirmed sellers (``crawler.follow.confirmed_sellers``)
   that no lexicon query returns now (each active query, each platform, the same 3 pages a sweep reads).
5. ``tertib follow`` (one round, ``--details none``); recall = truth listings the round stored / truth.

Prints the figures per seed; ``--json FILE`` keeps them. Target (issue #21): recall ≥ 0.9 in one round.
Reproduce: ``.venv/bin/python bench/follow_recall.py --seeds 3``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.follow import confirmed_sellers  # noqa: E402
from crawler.review import approve  # noqa: E402
from crawler.sweep import active_queries  # noqa: E402
from sandbox.catalog import generate  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.state import SandboxState  # noqa: E402
from sandbox.words import pseudo_words  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Listing, Sighting, SweepRun  # noqa: E402

PLATFORMS = ("tokopedia", "lazada", "blibli")
PAGE_SIZES = {"tokopedia": 60, "lazada": 40, "blibli": 40}


def tertib(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"tertib {' '.join(args[:2])} failed: {proc.stderr.strip()[-600:]}")
    return proc


def measure(seed: int, size: int, days: int, work: Path) -> dict[str, Any]:
    from sqlalchemy import select

    state = SandboxState(generate(seed, size, drift_terms=pseudo_words(seed)), seed=seed)
    data = work / f"data-{seed}"
    with SandboxServer(state) as url:
        # 2. the sweep
        where = [a for p in PLATFORMS for a in ("-p", p)]
        tertib(data, "sweep", "--sandbox", url, *where, "--max-pages", "3", "--details", "none",
               "--no-screenshots", "--no-progress")  # fmt: skip
        db = Database(f"sqlite:///{(data / 'tertib.sqlite3').resolve()}")
        # 3. a simulated reviewer approves the strong ones; takedowns; time passes
        with db.session() as s:
            strong = s.execute(select(Listing.id, Listing.url).where(Listing.verdict == "strong")).all()
            approve(s, [i for i, _ in strong], by="simulated reviewer", simulated=True)
        state.takedown([u for _, u in strong])
        state.clock.advance(days)
        # 4. the truth: live listings of confirmed shops that no lexicon query returns now
        with db.session() as s:
            targets, _skipped = confirmed_sellers(s)
            queries, _ = active_queries(s)
        searchable: set[str] = set()
        for platform in PLATFORMS:
            for q in queries:
                if state.blocked_query(platform, q):
                    continue
                for page in range(3):
                    rows, _ = state.search(platform, q, page * PAGE_SIZES[platform], PAGE_SIZES[platform])
                    searchable.update(x.key for x in rows)
        truth: dict[str, Any] = {}
        for t in targets:
            rows, _ = state.shop(t.platform, t.seller_id, 0, 10**6)
            truth.update({x.key: x for x in rows if x.key not in searchable})
        # 5. one follow round
        out = tertib(
            data, "follow", "--sandbox", url, "--details", "none", "--no-screenshots", "--no-progress"
        )
        with db.session() as s:
            run_id = s.scalar(
                select(SweepRun.id).where(SweepRun.kind == "follow").order_by(SweepRun.id.desc())
            )
            found = set(
                s.scalars(
                    select(Listing.listing_key)
                    .join(Sighting, Sighting.listing_id == Listing.id)
                    .where(Sighting.sweep_run_id == run_id)
                )
            )
        db.dispose()
    hit = [k for k in truth if k in found]
    relisted = [k for k, x in truth.items() if x.relist_of]
    result = {
        "seed": seed,
        "confirmed_shops": len(targets),
        "truth": len(truth),
        "truth_relisted": len(relisted),
        "truth_illegal": sum(1 for x in truth.values() if x.label == "illegal_import"),
        "found": len(hit),
        "found_relisted": sum(1 for k in relisted if k in found),
        "recall": round(len(hit) / len(truth), 3) if truth else None,
        "follow_output": out.stdout.strip().splitlines()[-2:],
    }
    print(
        f"seed {seed}: {len(targets)} confirmed shops; {len(truth)} of their live listings no lexicon query "
        f"returns ({len(relisted)} relistings, {result['truth_illegal']} illegal); one follow round found "
        f"{len(hit)} ({result['found_relisted']} relistings): recall {result['recall']}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=401)
    parser.add_argument("--size", type=int, default=6000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tertib-follow-bench-") as tmp:
        for i in range(args.seeds):
            results.append(measure(args.seed + i, args.size, args.days, Path(tmp)))
    recalls = [r["recall"] for r in results if r["recall"] is not None]
    print(
        f"recall over {len(recalls)} seeds: {recalls} (min {min(recalls) if recalls else '-'}); target ≥ 0.9"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
