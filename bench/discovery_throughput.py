"""Emerging-term discovery on a 100,000-listing sweep, background and context similarity included, one core.

Builds (not timed) a SQLite database holding one sweep run of N listings from a generated catalog (seeded,
with five fresh pseudo drift words), each with its verdict from the packaged scorer, and a background corpus
of B ordinary listings from another catalog. Then times, as this process's CPU time (``time.process_time``:
one core, load from other processes not counted):

- **discovery** — ``run_discovery`` as the sweep's follow-up runs it: read the run's listings and the
  background, score the background, record yields, rank (per-field contrast, PPMI context vectors), store;
- **baseline** — normalising every title and description of the run once (``crawler.terms.normalise``):
  the least any text mining over the same listings must do.

Prints both, the ratio, the stage split (gather / rank / store) and whether the drift words were found.

Usage: ``.venv/bin/python bench/discovery_throughput.py [--listings 100000] [--background 3000] [--seed 5]``
Target (issue #21): discovery under 60 s on one core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from crawler.terms.discovery import _store, analyse, gather, record_yields
from crawler.terms.lexicon import Lexicon
from crawler.terms.normalise import normalise
from crawler.terms.scorer import Scorer
from sandbox.catalog import generate
from sandbox.words import pseudo_words
from storage.db import Database
from storage.models import BackgroundDoc, Listing, Sighting, SweepRun


def build(db: Database, n: int, n_background: int, seed: int, words: tuple[str, ...]) -> int:
    catalog = generate(seed, n, drift_terms=words)
    scorer = Scorer(Lexicon.packaged())
    with db.session() as s:
        run = SweepRun(platforms=["tokopedia", "lazada", "blibli"], status="completed", queries=["bal"])
        s.add(run)
        s.flush()
        rows = []
        for i, x in enumerate(catalog):
            score = scorer.score(f"{x.title}\n{x.description}")
            rows.append(
                {
                    "id": i + 1,
                    "listing_key": x.key,
                    "platform": x.platform,
                    "platform_listing_id": x.listing_id,
                    "url": f"https://example.invalid/{x.key}",
                    "title": x.title,
                    "description": x.description,
                    "verdict": score.verdict,
                    "score_value": score.score,
                }
            )
        for start in range(0, len(rows), 5000):
            s.execute(insert(Listing), rows[start : start + 5000])
            s.execute(
                insert(Sighting),
                [
                    {"listing_id": r["id"], "sweep_run_id": run.id, "query": "bal"}
                    for r in rows[start : start + 5000]
                ],
            )
        back = SweepRun(platforms=["tokopedia"], kind="background", status="completed")
        s.add(back)
        s.flush()
        ordinary = [x for x in generate(seed + 1, n_background * 3) if x.label != "illegal_import"]
        s.execute(
            insert(BackgroundDoc),
            [
                {
                    "sweep_run_id": back.id,
                    "platform": x.platform,
                    "listing_key": f"bg:{x.key}",
                    "query": "kaos",
                    "title": x.title,
                    "description": x.description if i % 4 == 0 else "",
                }
                for i, x in enumerate(ordinary[:n_background])
            ],
        )
        return run.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--background", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    words = pseudo_words(args.seed)
    with tempfile.TemporaryDirectory(prefix="tertib-discovery-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        db.migrate()
        t0 = time.monotonic()
        run_id = build(db, args.listings, args.background, args.seed, words)
        print(f"built a sweep run of {args.listings:,} listings + {args.background:,} background in "
              f"{time.monotonic() - t0:.0f} s (not timed)")  # fmt: skip
        # baseline: normalise every title and description once
        with db.session() as s:
            texts = [(t, d) for t, d in s.query(Listing.title, Listing.description)]
        c0 = time.process_time()
        for title, description in texts:
            normalise(title)
            if description:
                normalise(description)
        baseline = time.process_time() - c0
        # discovery, stage by stage, as run_discovery runs it
        with db.session() as s:
            c0 = time.process_time()
            inputs = gather(s, run_id)
            record_yields(s, inputs.run)
            c1 = time.process_time()
            result = analyse(inputs)
            c2 = time.process_time()
            _store(s, inputs.run, result.proposals, inputs.candidates, "bench")
            c3 = time.process_time()
        total = c3 - c0
        found = [w for w in words if w in [p.phrase for p in result.proposals][:25]]
        print(
            f"discovery: {total:.1f} s CPU (gather {c1 - c0:.1f}, rank {c2 - c1:.1f}, store {c3 - c2:.1f}) "
            "for "
            f"{len(inputs.candidates):,} candidates, {len(inputs.others):,} other listings, "
            f"{len(inputs.background):,} background; {len(result.proposals)} proposals, drift words in the "
            f"top 25: {len(found)}/5"
        )
        print(f"baseline (normalise each text once): {baseline:.1f} s CPU; ratio {total / baseline:.1f}x")
        print(f"target < 60 s: {'met' if total < 60 else 'MISSED'}")
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
