"""Hostile listing text: what a seller's 1 MB title costs, and whether each stage stays linear.

For each adversarial shape (repeated terms, negations, quantities, homoglyphs, spaced/dotted letters,
leetspeak, joined words, emoji, zero-width joins, one endless word): CPU seconds of
``Scorer.score`` on a 1 MB title (the text is cut to ``crawler.limits.SCORE_TEXT_MAX`` first), and — the
linearity check — CPU seconds of the three stages (normalise → matcher → scorer) on the *uncut* text at
100 kB (the baseline, measured in the same run) and at 1 MB, with their ratio: ≈ 10 is linear, ≈ 100 would be
quadratic. Before issue #19, 40 kB of "bal korea " took 2.0 s and 40 kB of "b4l" 4.5 s (quadratic).

Usage: ``.venv/bin/python bench/hostile_input.py``. Times are this process's CPU time (``process_time``).
Target (issue #19): a 1 MB title scores in well under a second; every stage linear.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.terms.lexicon import Lexicon
from crawler.terms.normalise import normalise
from crawler.terms.scorer import Scorer

# the adversarial shapes the tests check (one list): tests/test_input_bounds.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_input_bounds import ADVERSARIAL as SHAPES


def text_of(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def cpu(fn, *args):  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def main() -> None:
    scorer = Scorer(Lexicon.packaged())

    def stages(text: str) -> None:
        norm = normalise(text)
        scorer.matcher.match_rows(norm.text)
        scorer.score_normalised(norm)

    print(f"{'shape':<18} {'1 MB title (cut)':>16} {'uncut 100 kB':>13} {'uncut 1 MB':>11} {'ratio':>6}")
    worst_title, worst_ratio = 0.0, 0.0
    for name, unit in SHAPES.items():
        title = cpu(scorer.score, text_of(unit, 1_000_000))
        small = cpu(stages, text_of(unit, 100_000))
        large = cpu(stages, text_of(unit, 1_000_000))
        ratio = large / max(small, 1e-3)
        worst_title, worst_ratio = max(worst_title, title), max(worst_ratio, ratio)
        print(f"{name:<18} {title * 1000:>13.1f} ms {small:>11.3f} s {large:>9.3f} s {ratio:>6.1f}")
    print(
        f"worst: 1 MB title {worst_title * 1000:.1f} ms CPU; "
        f"uncut 1 MB / 100 kB = {worst_ratio:.1f}× (linear ≈ 10×)"
    )


if __name__ == "__main__":
    main()
