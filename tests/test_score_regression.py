"""Scores, verdicts, signals and normalised text stay exactly as they were before the performance work.

``tests/fixtures/scores_before.jsonl`` was written by this module (``python tests/test_score_regression.py
--write``) with the scorer as it stood before the normaliser/matcher/scorer were optimised. It holds
8,209 distinct texts: the sandbox catalog's titles (``generate(7, 3000)``) and, for its first 1,000
listings, title + description; benchmark-style titles with evasions; the labelled titles; and seeded
random texts built from lexicon forms and hostile characters (homoglyphs, full-width, diacritics,
zero-width, joiners, leetspeak, thousands groups, handles, stretched letters). The texts are stored in
the fixture, so the generators below may change without changing what is compared. Rewrite the fixture
only when a *rule* changes on purpose (and bump ``SCORER_VERSION``), never to make a speed-up pass.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.terms.lexicon import Lexicon
from crawler.terms.normalise import normalise
from crawler.terms.scorer import Scorer

FIXTURE = Path(__file__).parent / "fixtures" / "scores_before.jsonl"
LABELLED = Path(__file__).parent / "fixtures" / "labelled_titles.tsv"

HOSTILE = [
    "А", "е", "о", "р", "с", "ο", "ρ", "α", "ι",  # homoglyphs (Cyrillic/Greek)
    "Ａ", "Ｂ", "ｌ", "𝐁", "𝐚", "ﬂ", "①", "²",  # compatibility forms
    "é", "ó", "e\u0301", "ñ", "ü",  # diacritics
    "\u200b", "\u200d", "\ufe0f",  # zero-width, variation selector
    "🔥", "✨", "❤️", "★", "彡", "中", "·", "•", "—", "–",  # decoration, other scripts, dashes
    ".", "-", "_", "'", "*", "’", "`", ",", "!", "|", "@", "$", "/", "\n", "  ",  # joiners, punctuation
]  # fmt: skip
FILLER = str.split(
    "jual baju kaos jaket celana murah ready stok grosir ecer wanita pria anak original premium bahan "
    "rp 50rb 5jt 25 kg 300 pcs isi 1 bal 2 karung dus 5.000 10,000 x100 rb ribu per / tisu beras bukan "
    "tidak barang non ex eks thriftt baaal bks brg scnd krg jpn bkn"
)
LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1"})


def _evade(rng: random.Random, word: str) -> str:
    trick = rng.randrange(9)
    if trick == 0:
        return word.translate(LEET)
    if trick == 1:
        return " ".join(word)
    if trick == 2 and word:
        i = rng.randrange(len(word))
        return word[:i] + word[i] * rng.randint(2, 4) + word[i + 1 :]
    if trick == 3:
        return rng.choice(".-_*").join(word)
    if trick == 4:
        return word.upper()
    if trick == 5:
        return "".join(rng.choice(HOSTILE) if rng.random() < 0.25 else c for c in word)
    if trick == 6:
        return word.replace(" ", "")
    if trick == 7:
        return rng.choice(("@", "$", "#", "")) + word
    return word


def _hostile_texts(n: int, seed: int, forms: list[str]) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(FILLER) for _ in range(rng.randint(1, 6))]
        for _ in range(rng.randint(0, 3)):
            parts.insert(rng.randrange(len(parts) + 1), _evade(rng, rng.choice(forms)))
        text = ""
        for p in parts:
            text += p + (rng.choice(HOSTILE) if rng.random() < 0.3 else " ")
        out.append(text.strip() if rng.random() < 0.8 else text)
    return out


def _bench_titles(n: int, seed: int, lexicon: Lexicon) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from score_throughput import make_titles

    return list(make_titles(n, seed, lexicon))


def corpus() -> list[str]:
    """The texts the fixture was built from (used only by ``--write``)."""
    from sandbox.catalog import generate

    lexicon = Lexicon.packaged()
    forms = sorted({f for t in lexicon.active for f in t.forms()})
    listings = generate(7, 3000)
    texts: list[str] = [x.title for x in listings]
    texts += [f"{x.title}\n{x.description}" for x in listings[:1000]]
    texts += _bench_titles(2000, 7, lexicon)
    texts += [line.split("\t", 1)[1] for line in LABELLED.read_text().splitlines()[1:] if "\t" in line]
    texts += _hostile_texts(3000, 7, forms)
    return list(dict.fromkeys(texts))  # distinct, in order


def record(scorer: Scorer, text: str) -> dict[str, Any]:
    """Everything that must not change for one text."""
    r = scorer.score(text)
    norm = normalise(text)
    signals = []
    for sig in r.signals:
        d = sig.to_dict()
        a, b = d["span"]
        assert d["matched"] == text[a:b]  # kept implicit in the fixture: it is the text at the span
        signals.append([d["term"], a, b, d["weight"], d["kind"], d["role"]])
    return {
        "text": text,
        "normalised": norm.text,
        "token_spans": [x for _, s, e in norm.tokens() for x in norm.original_span(s, e)],
        "score": r.score,
        "verdict": r.verdict,
        "signals": signals,  # [term, start, end, weight, kind, role]
    }


def _load() -> list[dict[str, Any]]:
    with FIXTURE.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_fixture_is_big_and_varied() -> None:
    rows = _load()
    assert len(rows) >= 5000
    assert len({r["text"] for r in rows}) == len(rows)
    verdicts = {r["verdict"] for r in rows}
    assert verdicts == {"strong", "candidate", "weak", "clear"}
    assert sum(not r["text"].isascii() for r in rows) >= 1000  # the slow paths are exercised too


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_scores_unchanged(order: str) -> None:
    """Same verdict, score, signals (spans, weights, matched text), normalised text and token spans.

    Run in both orders on a fresh scorer: per-token caches must not make a result depend on history."""
    scorer = Scorer(Lexicon.packaged())
    rows = _load()
    if order == "reverse":
        rows.reverse()
    diffs = []
    for row in rows:
        now = record(scorer, row["text"])
        if now != row:
            diffs.append((row, now))
    detail = "\n".join(f"{old['text']!r}:\n  before {old}\n  after  {new}" for old, new in diffs[:5])
    assert not diffs, f"{len(diffs)} of {len(rows)} texts changed, e.g.\n{detail}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_score_regression.py --write")
    scorer = Scorer(Lexicon.packaged())
    with FIXTURE.open("w", encoding="utf-8") as fh:
        for text in corpus():
            fh.write(json.dumps(record(scorer, text), ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stderr.write(f"wrote {FIXTURE}\n")
