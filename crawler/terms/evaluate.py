"""Measuring a scorer on labelled texts: precision, recall and F1 per verdict threshold, per family, and the
worst mistakes with their explanations. ``tertib model eval FILE.tsv`` and the retrain gate use it.

Labelled file format (``tertib model eval``): UTF-8, one example per line, ``label<TAB>title`` or
``label<TAB>title<TAB>description`` (an optional fourth column names a family for per-family figures). A
first line starting with ``label`` is a header; blank lines and lines starting with ``#`` are skipped.
Labels: ``illegal``/``illegal_import``/``illegal-import-candidate``/``1``/``positive``/``yes`` are illegal
imports; ``legit``/``legitimate``/``legit_*``/``unrelated``/``0``/``negative``/``no`` are not; ``unclear``
rows are counted and left out. Anything else is an error naming the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.errors import UsageError
from crawler.terms.scorer import SCORER_VERSION, Scorer, ScoreResult

POSITIVE_LABELS = frozenset(
    {"illegal", "illegal_import", "illegal-import-candidate", "1", "positive", "pos", "yes", "true"}
)
NEGATIVE_LABELS = frozenset(
    {"legit", "legitimate", "unrelated", "0", "negative", "neg", "no", "false", "clear"}
)
SKIP_LABELS = frozenset({"unclear", "unknown", "?"})
MAX_FIELD = 100_000  # characters per title/description read from a labelled file


@dataclass(slots=True)
class Example:
    title: str
    label: int  # 1 illegal import, 0 legitimate
    description: str = ""
    family: str = ""
    source: str = ""
    split: str = ""
    weight: float = 1.0
    key: str = ""  # listing key for review decisions

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.description}" if self.description else self.title


def parse_label(value: str) -> int | None:
    """1, 0, or None for 'unclear'; raises ValueError for anything else."""
    v = value.strip().lower()
    if v in POSITIVE_LABELS:
        return 1
    if v in NEGATIVE_LABELS or v.startswith("legit_"):
        return 0
    if v in SKIP_LABELS:
        return None
    raise ValueError(v)


def read_labelled(path: Path) -> tuple[list[Example], int]:
    """Examples from a labelled TSV, and how many 'unclear' rows were left out."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 (byte {exc.start})") from None
    out: list[Example] = []
    unclear = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if lineno == 1 and cols[0].strip().lower() == "label":
            continue
        if len(cols) < 2 or len(cols) > 4:
            raise UsageError(
                f"{path}:{lineno}: expected label<TAB>title[<TAB>description], got {len(cols)} column(s)"
            )
        try:
            label = parse_label(cols[0])
        except ValueError:
            raise UsageError(
                f"{path}:{lineno}: unknown label {cols[0].strip()[:40]!r} (use illegal or legit)"
            ) from None
        title = cols[1].strip()
        if not title:
            raise UsageError(f"{path}:{lineno}: empty title")
        description = cols[2].strip() if len(cols) > 2 else ""
        if len(title) > MAX_FIELD or len(description) > MAX_FIELD:
            raise UsageError(f"{path}:{lineno}: title or description longer than {MAX_FIELD:,} characters")
        if label is None:
            unclear += 1
            continue
        family = cols[3].strip() if len(cols) > 3 else ""
        out.append(Example(title=title, label=label, description=description, family=family))
    if not out:
        raise UsageError(f"{path}: no labelled rows")
    return out, unclear


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, label: int, flagged: bool) -> None:
        if label and flagged:
            self.tp += 1
        elif flagged:
            self.fp += 1
        elif label:
            self.fn += 1
        else:
            self.tn += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass(slots=True)
class Report:
    n: int
    positives: int
    thresholds: dict[str, float]
    by_threshold: dict[str, Counts]
    by_family: dict[str, Counts]
    confusion: dict[str, dict[str, int]]  # label -> verdict -> count
    mistakes: list[dict[str, Any]] = field(default_factory=list)
    model_version: str = ""
    scorer_version: str = ""
    unclear: int = 0

    @property
    def candidate(self) -> Counts:
        return self.by_threshold["candidate"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.positives,
            "unclear_skipped": self.unclear,
            "model_version": self.model_version,
            "scorer_version": self.scorer_version,
            "thresholds": self.thresholds,
            "by_threshold": {
                k: {"threshold": self.thresholds[k], **c.to_dict()} for k, c in self.by_threshold.items()
            },
            "by_family": {k: c.to_dict() for k, c in sorted(self.by_family.items())},
            "confusion": self.confusion,
            "worst_mistakes": self.mistakes,
        }


VERDICTS = ("strong", "candidate", "weak", "clear")


def evaluate(scorer: Scorer, examples: Sequence[Example], *, mistakes: int = 10, unclear: int = 0) -> Report:
    """Score every example and count, at each verdict threshold (a text is flagged at a threshold when
    its score reaches it), true/false positives and negatives; per family at the candidate threshold."""
    t = scorer.thresholds
    thresholds = {"strong": t.strong, "candidate": t.candidate, "weak": t.weak}
    by_threshold = {name: Counts() for name in thresholds}
    by_family: dict[str, Counts] = {}
    confusion = {lab: dict.fromkeys(VERDICTS, 0) for lab in ("illegal", "legit")}
    scored: list[tuple[Example, ScoreResult]] = []
    for ex in examples:
        result = scorer.score(ex.text)
        scored.append((ex, result))
        for name, value in thresholds.items():
            by_threshold[name].add(ex.label, result.score >= value)
        if ex.family:
            by_family.setdefault(ex.family, Counts()).add(ex.label, result.score >= t.candidate)
        confusion["illegal" if ex.label else "legit"][result.verdict] += 1
    wrong = [
        (ex, res)
        for ex, res in scored
        if (ex.label == 1 and res.score < t.candidate) or (ex.label == 0 and res.score >= t.candidate)
    ]
    # worst first: the furthest from the right side of the candidate threshold
    wrong.sort(key=lambda er: -abs(er[1].score - t.candidate))
    return Report(
        n=len(examples),
        positives=sum(ex.label for ex in examples),
        thresholds=thresholds,
        by_threshold=by_threshold,
        by_family=by_family,
        confusion=confusion,
        mistakes=[_mistake(ex, res) for ex, res in wrong[:mistakes]],
        model_version=scorer.model_version,
        scorer_version=SCORER_VERSION,
        unclear=unclear,
    )


def _mistake(ex: Example, res: ScoreResult) -> dict[str, Any]:
    return {
        "kind": "false negative" if ex.label else "false positive",
        "label": "illegal" if ex.label else "legit",
        "family": ex.family,
        "title": ex.title,
        "description": ex.description,
        "score": res.score,
        "rule_score": res.rule_score if res.rule_score is not None else res.score,
        "verdict": res.verdict,
        "signals": [s.to_dict() for s in res.signals],
        "features": res.features(),
        "product": res.product(),
    }
