"""Scorer throughput: titles per second on one core, against a naive fuzzy baseline in the same run.

Generates N distinct titles (default 100,000, seeded; no per-text cache can help) from the packaged
lexicon's terms and variants, clothing and commerce words, numbers, random seller codes and evasive
spellings (leetspeak, spaced letters, repeated letters, emoji). It times :meth:`Scorer.score` over all of
them in this one process (one core), then times the naive baseline — rapidfuzz ``fuzz.partial_ratio`` of
every lexicon term and variant against every title, threshold 90 — on an evenly spread subsample,
interleaved chunk by chunk with the scorer so that load from other processes hits both alike, extrapolates
it to N, and prints both rates and their ratio. The scorer is the full verdict path: rules + the packaged
learned model (issue #15); the rules alone score the same chunks, each of the two timed on alternate chunks
where it meets the titles first, so the model's own cost shows beside them (``--rules-only`` times the
rules alone as the scorer, on every chunk).
Times are this process's CPU time (``time.process_time``), i.e. titles per CPU-second on one core, so a
busy shared machine does not count waiting for the CPU as scoring time.

Usage: ``.venv/bin/python bench/score_throughput.py [--titles 100000] [--baseline-sample 2000] [--seed 1]
[--rules-only]``
Targets: ≥ 20,000 titles/s (issues #4 and #15) and, for the rules alone, ≥ 10× the baseline (issue #4).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz import fuzz

from crawler.terms.lexicon import Lexicon
from crawler.terms.model import load_packaged
from crawler.terms.scorer import Scorer

WORDS = str.split(
    "baju kaos kemeja jaket celana hoodie sweater dress rok jeans blazer cardigan flanel denim wanita pria "
    "anak murah ready stok original premium grosir ecer size all new promo diskon terlaris kualitas bagus "
    "bahan adem katun combed polos motif garis kotak oversize slimfit bandung jakarta surabaya medan"
)
EMOJI = ("🔥", "✨", "⭐", "💯", "❤️")
LEET = str.maketrans("aeio", "4310")


def evade(rng: random.Random, word: str) -> str:
    trick = rng.randrange(6)
    if trick == 0:
        return word.translate(LEET)
    if trick == 1 and len(word) <= 8:
        return " ".join(word)
    if trick == 2:
        i = rng.randrange(len(word))
        return word[:i] + word[i] * 3 + word[i + 1 :]
    if trick == 3:
        e = rng.choice(EMOJI)
        return f"{e}{word.upper()}{e}"
    if trick == 4:
        return ".".join(word)
    return word


def make_titles(n: int, seed: int, lexicon: Lexicon) -> list[str]:
    rng = random.Random(seed)
    forms = [f for t in lexicon.active for f in t.forms()]
    titles: list[str] = []
    seen: set[str] = set()
    while len(titles) < n:
        parts = rng.sample(WORDS, rng.randint(3, 7))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            form = rng.choice(forms)
            parts.insert(rng.randrange(len(parts) + 1), evade(rng, form) if rng.random() < 0.3 else form)
        if rng.random() < 0.4:
            parts.append(rng.choice(("isi", "")) + f" {rng.choice((12, 50, 100, 300, 500))} pcs")
        if rng.random() < 0.3:
            parts.append(f"{rng.choice((5, 25, 100))}kg")
        if rng.random() < 0.3:
            parts.append("".join(rng.choices("abcdefghjkmnpqrstuvwxyz23456789", k=6)))  # seller code
        title = " ".join(parts)
        if title not in seen:  # all distinct: no repeated input can profit from a per-text cache
            seen.add(title)
            titles.append(title)
    return titles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, default=100_000)
    ap.add_argument("--baseline-sample", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rules-only", action="store_true", help="time the rules alone as the scorer")
    args = ap.parse_args(argv)

    lexicon = Lexicon.packaged()
    titles = make_titles(args.titles, args.seed, lexicon)
    assert len(set(titles)) == len(titles), "benchmark titles must be distinct"
    forms = sorted({f.lower() for t in lexicon.active for f in t.forms()})

    t0 = time.process_time()
    model = None if args.rules_only else load_packaged()
    scorer = Scorer(lexicon, model=model)
    build = time.process_time() - t0
    rules = Scorer(lexicon)
    # interleave chunks of both so that load from other processes hits both measurements alike. With the
    # model, the rules alone score every chunk too, and whichever of the two goes first in a chunk meets its
    # new words first (the normaliser's and matcher's per-word memos are shared): so each is timed only on
    # the chunks where it goes first (alternate chunks), and both are measured on first sight alike.
    sample_every = max(1, len(titles) // args.baseline_sample)
    ours = base = rules_time = 0.0
    flagged = base_hits = sampled = ours_n = rules_n = 0
    chunk = 1000
    for k, i in enumerate(range(0, len(titles), chunk)):
        part = titles[i : i + chunk]
        rules_first = model is not None and k % 2 == 1
        if rules_first:
            t0 = time.process_time()
            for title in part:
                rules.score(title)
            rules_time += time.process_time() - t0
            rules_n += len(part)
        t0 = time.process_time()
        for title in part:
            if scorer.score(title).verdict in ("strong", "candidate"):
                flagged += 1
        if not rules_first:
            ours += time.process_time() - t0
            ours_n += len(part)
            if model is not None:
                for title in part:  # untimed: keeps the two passes' memos alike
                    rules.score(title)
        sample = part[::sample_every]
        t0 = time.process_time()
        for title in sample:
            low = title.lower()
            base_hits += sum(1 for f in forms if fuzz.partial_ratio(f, low) >= 90)
        base += time.process_time() - t0
        sampled += len(sample)
    ours_rate = ours_n / ours
    base_rate = sampled / base
    sample = titles[:sampled]

    print(
        f"lexicon: {len(lexicon.active)} terms, {len(forms)} terms+variants; "
        f"scorer built in {build * 1000:.0f} ms"
    )
    what = "rules alone" if model is None else f"rules + model {model.version}"
    print(
        f"tertib scorer : {ours_n:,} titles timed in {ours:.2f} s = {ours_rate:,.0f} titles/s "
        f"({flagged:,} of {len(titles):,} flagged; {what})"
    )
    if model is not None:
        rules_rate = rules_n / rules_time
        print(
            f"rules alone   : {rules_rate:,.0f} titles/s on the other {rules_n:,} "
            f"({rules_rate / base_rate:.1f}x the baseline); the model adds "
            f"{(1 / ours_rate - 1 / rules_rate) * 1e6:.1f} µs per title"
        )
    print(
        f"naive baseline: {len(sample):,} titles in {base:.2f} s = {base_rate:,.0f} titles/s "
        f"(partial_ratio x {len(forms)} forms; "
        f"extrapolated to {len(titles):,}: {len(titles) / base_rate:.1f} s)"
    )
    print(f"speed-up: {ours_rate / base_rate:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
