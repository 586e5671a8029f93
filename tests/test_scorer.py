"""Scorer: verdicts, explanations with original spans, and precision/recall on labelled data."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import load_settings
from crawler.terms.lexicon import Lexicon
from crawler.terms.scorer import SCORER_VERSION, Scorer, Thresholds

LABELLED = Path(__file__).parent / "fixtures" / "labelled_titles.tsv"
FLAGGED = ("strong", "candidate")


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(Lexicon.packaged())


def precision_recall(pairs: list[tuple[bool, bool]]) -> tuple[float, float]:
    tp = sum(f and y for f, y in pairs)
    fp = sum(f and not y for f, y in pairs)
    fn = sum(y and not f for f, y in pairs)
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def test_output_shape_and_spans(scorer: Scorer) -> None:
    r = scorer.score("Jual B A L korea isi 300 pcs").to_dict()
    assert list(r)[:4] == ["text", "score", "verdict", "signals"]
    assert r["verdict"] == "strong" and 0.85 <= r["score"] <= 1
    assert r["scorer_version"] == SCORER_VERSION
    text = r["text"]
    by_term = {s["term"]: s for s in r["signals"]}
    a, b = by_term["bal"]["span"]
    assert text[a:b] == "B A L" and by_term["bal"]["weight"] > 0
    assert list(by_term["bal"])[:3] == ["term", "span", "weight"]
    assert "bulk + used/origin" in by_term


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("bal korea isi 300", "strong"),
        ("balpres", "candidate"),  # bulk wording alone: candidate, needs review
        ("thrift korea", "candidate"),  # origin + used
        ("jaket ex korea", "candidate"),  # "ex" says used
        ("thrift", "weak"),
        ("kaos import", "clear"),
        ("preloved dress", "clear"),
        ("kemeja vintage", "clear"),
        ("jual monza medan", "weak"),
        ("kaos sisa ekspor", "clear"),
        ("1 bal tisu", "clear"),
        ("bukan balpres, barang baru", "clear"),
    ],
)
def test_domain_rules(scorer: Scorer, text: str, verdict: str) -> None:
    assert scorer.score(text).verdict == verdict


def test_negatives_pull_down_and_explain(scorer: Scorer) -> None:
    plain = scorer.score("bal jaket korea")
    with_negative = scorer.score("bal jaket korea sisa ekspor")
    assert with_negative.score < plain.score * 0.5
    neg = [s for s in with_negative.signals if s.weight < 0]
    assert [s.term for s in neg] == ["sisa ekspor"]
    assert with_negative.text[neg[0].span[0] : neg[0].span[1]] == "sisa ekspor"


def test_negation_turns_signal_negative(scorer: Scorer) -> None:
    r = scorer.score("Kaos baru bukan barang bekas impor")
    assert r.verdict == "clear"
    assert any(s.role == "negated" for s in r.signals)


def test_thresholds_come_from_settings() -> None:
    settings = load_settings(env={"TERTIB_THRESHOLD_CANDIDATE": "0.8"}, config_file=Path("/nonexistent.toml"))
    strict = Scorer(Lexicon.packaged(), Thresholds.from_settings(settings))
    assert strict.score("balpres").verdict == "weak"


def test_labelled_set_precision_recall(scorer: Scorer) -> None:
    rows = [
        line.split("\t")
        for line in LABELLED.read_text(encoding="utf-8").splitlines()[1:]
        if line.strip() and not line.startswith("#")
    ]
    assert len(rows) >= 100
    pairs = [(scorer.score(t).verdict in FLAGGED, label == "illegal_import") for label, t in rows]
    precision, recall = precision_recall(pairs)
    assert precision >= 0.95, precision
    assert recall >= 0.90, recall


def test_sandbox_catalog_held_out(scorer: Scorer) -> None:
    catalog = pytest.importorskip("sandbox.catalog")
    listings = catalog.generate(20260101, 3000)
    flagged = [scorer.score_listing(x.title, x.description).verdict in FLAGGED for x in listings]
    pairs = [(f, x.label == "illegal_import") for f, x in zip(flagged, listings, strict=True)]
    precision, recall = precision_recall(pairs)
    lexical = [(f, y) for (f, y), x in zip(pairs, listings, strict=True) if x.evasion != "none"]
    _, recall_lexical = precision_recall(lexical)
    print(
        f"catalog: precision {precision:.3f} recall {recall:.3f} "
        f"recall without evasion=none {recall_lexical:.3f}"
    )
    assert precision >= 0.95
    assert recall >= 0.90
    assert recall_lexical >= 0.97
