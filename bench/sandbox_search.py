"""Benchmark: one search page on a 50,000-listing sandbox catalog, inverted index vs a linear scan.

Run: ``.venv/bin/python bench/sandbox_search.py [--size 50000] [--queries 40]``. Prints the median ms per
search page (60 rows, uncached: the state's ranking cache is cleared before every query) for the
inverted index in :class:`sandbox.state.SandboxState`, and for a linear scan over the same listings with
the same matching rule, measured in the same run, plus the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sandbox.catalog import generate
from sandbox.state import SandboxState, tokenize

QUERIES = (
    "bal", "bal korea", "balpres", "karungan", "thrift", "preloved", "jaket", "kaos polo", "isi 300 pcs",
    "monza", "cakar", "ex japan", "hoodie bal", "baju bekas", "jaket kulit", "sisa ekspor", "ukay", "bandela",
    "grade a", "100 kg",
)  # fmt: skip


def linear(state: SandboxState, platform: str, query: str, limit: int) -> list[int]:
    tokens = tokenize(query)
    rows = []
    for pos, x in enumerate(state.catalog):
        if x.platform != platform or not state.visible(x):
            continue
        words = tokenize(x.title + " " + x.description)
        joined = " ".join(words)
        if all(t in words or t in joined for t in tokens):
            score = sum(1 for t in tokens if t in tokenize(x.title))
            rows.append((not x.sponsored, -score, -x.created_day, x.listing_id, pos))
    rows.sort()
    return [r[-1] for r in rows[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    t0 = time.perf_counter()
    state = SandboxState(generate(1, args.size), seed=1)
    print(f"catalog {args.size} listings + index built in {time.perf_counter() - t0:.1f} s")
    queries = [QUERIES[i % len(QUERIES)] for i in range(args.queries)]
    indexed, scanned = [], []
    for i, q in enumerate(queries):
        platform = ("tokopedia", "shopee", "lazada")[i % 3]
        state.clear_cache()
        t = time.perf_counter()
        page, _ = state.search(platform, q, 0, 60)
        indexed.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        base = linear(state, platform, q, 60)
        scanned.append((time.perf_counter() - t) * 1000)
        assert [x.key for x in page] == [state.catalog[p].key for p in base], q
    mi, ms = statistics.median(indexed), statistics.median(scanned)
    print(f"indexed search page: median {mi:.2f} ms, max {max(indexed):.2f} ms over {len(queries)} queries")
    print(f"linear scan baseline: median {ms:.2f} ms")
    print(f"speed-up: {ms / mi:.0f}x")


if __name__ == "__main__":
    main()
