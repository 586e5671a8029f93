"""Benchmark: CPU per listing of each sweep stage, on one thread, on real sandbox search responses.

Run: ``.venv/bin/python bench/pipeline_stages.py [--size 20000] [--max-pages 10]``.

Fetches the search pages the sweep benchmark crawls (Tokopedia, Lazada, Blibli; ten queries) from a
sandbox subprocess, then times each stage with ``time.process_time`` (no threads, no reactor, so no GIL
contention): the profile parsers (the bare spider's own work, the baseline), ``NormalisePipeline``,
the spider's conversion of each search response into the listings' evidence ``Exchange``,
``RunScoring.score``, ``RunPersistence.persist`` in batches of 200, and the evidence recorder in batches of
50 for every candidate (``RunEvidence.capture_entry`` + ``EvidenceRecorder.record_batch``). Prints µs per
listing for each stage and the pipeline's total as a multiple of parsing: the CPU-bound floor of
``bench/sweep_throughput.py``'s ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = ("jaket", "thrift", "bal korea", "preloved", "bekas impor", "kaos", "karungan", "hoodie", "korea",
           "original")  # fmt: skip
PLATFORMS = ("tokopedia", "lazada", "blibli")


def fetch(url: str, settings: Any, max_pages: int) -> list[tuple[str, str, int, Any]]:
    import httpx
    from scrapy.http import Request, TextResponse

    responses = []
    with httpx.Client() as client:
        for platform in PLATFORMS:
            profile = settings.registry.profiles[platform]
            assert profile.search_request is not None
            for query in QUERIES:
                for page in range(1, max_pages + 1):
                    spec = profile.search_request(settings, query, page)
                    got = client.request(
                        spec.method, spec.url, headers=spec.headers or None, content=spec.body
                    )
                    if got.status_code != 200:
                        break
                    request = Request(
                        spec.url, method=spec.method, headers=spec.headers or None, body=spec.body
                    )
                    response = TextResponse(
                        spec.url, body=got.content, status=200, headers=dict(got.headers), request=request
                    )
                    responses.append((platform, query, page, response))
    return responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--max-pages", type=int, default=10)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    from crawler.config import load_settings
    from crawler.evidence.capture import EvidenceRecorder
    from crawler.evidence.exchange import Exchange
    from crawler.pipelines import NormalisePipeline
    from crawler.run_context import RunContext
    from sandbox.server import SandboxProcess
    from storage.db import Database

    # the sandbox in a child process: its catalog in this heap would slow every garbage collection here
    with (
        tempfile.TemporaryDirectory(prefix="tertib-stages-") as tmp,
        SandboxProcess(seed=args.seed, size=args.size) as url,
    ):
        settings = load_settings(sandbox_url=url, data_dir=tmp)
        db = Database(settings.db_url)
        db.migrate()
        responses = fetch(url, settings, args.max_pages)
        ctx = RunContext(settings, run_id=None)
        ctx.scoring.score("warm-up: loads the lexicon")

        started = time.process_time()
        items: list[Any] = []
        pages: list[tuple[Any, list[Any]]] = []
        for platform, query, page, response in responses:
            parse = settings.registry.profiles[platform].parse_search
            assert parse is not None
            found = parse(response.body, url=response.url, query=query, page=page, status=200)
            pages.append((response, found.listings))
            items += found.listings
        costs = {"parse (baseline)": time.process_time() - started}
        started = time.process_time()
        for response, listings in pages:  # as the sweep spider does: one Exchange per search response
            if listings:
                evidence = [Exchange.from_scrapy(response)]
                for listing in listings:
                    listing.exchanges = list(evidence)
        costs["exchanges"] = time.process_time() - started
        n = len(items)
        unique = len({i.listing_key for i in items})
        print(f"{len(responses)} search responses, {n:,} listings ({unique:,} unique)")

        normalise = NormalisePipeline()
        started = time.process_time()
        for item in items:
            normalise.process_item(item)
        costs["normalise"] = time.process_time() - started
        started = time.process_time()
        for item in items:
            item.score = ctx.scoring.score(item.text())
        costs["score"] = time.process_time() - started
        started = time.process_time()
        for start in range(0, n, 200):
            ctx.persistence.persist(items[start : start + 200])
        costs["persist"] = time.process_time() - started

        recorder = ctx.evidence.recorder = EvidenceRecorder(settings, db)
        seen: set[str] = set()
        candidates = []
        for item in items:
            if item.score and item.score.verdict in ("candidate", "strong") and item.listing_key not in seen:
                seen.add(item.listing_key)
                candidates.append(item)

        async def entries() -> list[Any]:
            return [await ctx.evidence.capture_entry(item) for item in candidates]

        started = time.process_time()
        batch = asyncio.run(entries())
        for start in range(0, len(batch), 50):
            recorder.record_batch(batch[start : start + 50])
        costs["evidence"] = time.process_time() - started
        recorder.close()
        ctx.close()

        for stage, seconds in costs.items():
            print(f"{stage:<17} {1e6 * seconds / n:7.1f} µs per listing ({seconds:.2f} s)")
        per_capture = 1e6 * costs["evidence"] / max(1, len(candidates))
        print(f"evidence per candidate capture: {per_capture:.0f} µs ({len(candidates):,} captures)")
        pipeline = sum(v for k, v in costs.items() if k != "parse (baseline)")
        ratio = pipeline / costs["parse (baseline)"]
        print(f"pipeline total {1e6 * pipeline / n:.0f} µs per listing = {ratio:.1f}× parsing")


if __name__ == "__main__":
    main()
